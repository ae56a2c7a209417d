import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from proxies.base import Batch, get_proxy
from proxies.zico import Zico
from spaces.errors import BenchError


def naive_zico(model: nn.Module, batch: Batch, batches: int) -> float:
    """ZiCo as its reference code computes it: backward on each mini-batch in turn, the weight
    gradients of every Linear and Conv2d stacked, numpy mean/std over batches, std-0 entries left
    out, a layer whose sum is 0 skipped."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    size = len(batch.x) // batches
    grads = {i: [] for i in range(len(layers))}
    for b in range(batches):
        model.zero_grad()
        part = slice(b * size, (b + 1) * size)
        F.cross_entropy(model(batch.x[part]), batch.y[part]).backward()
        for i, layer in enumerate(layers):
            grad = layer.weight.grad
            grads[i].append(np.zeros(layer.weight.numel()) if grad is None
                            else grad.double().numpy().ravel())
    total = 0.0
    for stacked in (np.array(g) for g in grads.values()):
        std = np.std(stacked, axis=0)
        nonzero = np.nonzero(std)[0]
        ratio_sum = np.sum(np.mean(np.abs(stacked), axis=0)[nonzero] / std[nonzero])
        if ratio_sum != 0:
            total += np.log(ratio_sum)
    return total


@pytest.mark.parametrize("batches", [2, 4])
def test_agrees_with_a_naive_per_batch_loop(small_model, batches):
    make, batch = small_model
    expected = naive_zico(make(0).train(), batch, batches)
    assert Zico(batches=batches)(make(0), batch) == pytest.approx(expected, rel=1e-9)


def tiny_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 8), nn.ReLU(), nn.Linear(8, 5))


def test_weights_with_the_same_gradient_in_every_batch_are_left_out(small_model):
    # A zero input channel gives its weights a zero gradient in both batches: std 0, excluded
    # (kept, they would add 0/0 = NaN).
    _, batch = small_model
    x = batch.x.clone()
    x[:, 0] = 0.0
    zeroed = Batch(x, batch.y, batch.num_classes)
    score = get_proxy("zico")(tiny_mlp(), zeroed)
    assert math.isfinite(score)
    assert score == pytest.approx(naive_zico(tiny_mlp(), zeroed, 2), rel=1e-9)


def test_a_layer_the_loss_does_not_reach_adds_nothing(small_model):
    _, batch = small_model

    class WithUnusedLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = tiny_mlp()
            self.unused = nn.Linear(4, 4)  # registered, never called: its gradients are all 0

        def forward(self, x):
            return self.body(x)

    model = WithUnusedLayer()
    assert get_proxy("zico")(model, batch) == get_proxy("zico")(tiny_mlp(), batch)


def test_swapping_the_mini_batches_leaves_the_score_unchanged(small_model):
    make, batch = small_model
    half = len(batch.x) // 2
    swapped = Batch(batch.x.roll(half, 0), batch.y.roll(half, 0), batch.num_classes)
    assert get_proxy("zico")(make(0), swapped) == pytest.approx(
        get_proxy("zico")(make(0), batch), rel=1e-12)


def test_a_single_batch_is_refused(small_model):
    make, batch = small_model
    with pytest.raises(BenchError, match="at least 2 batches"):
        Zico(batches=1)(make(0), batch)
    odd = Batch(batch.x[:3], batch.y[:3], batch.num_classes)
    with pytest.raises(BenchError, match="multiple of 2 and at least 4"):
        get_proxy("zico")(make(0), odd)
