import math

import numpy as np
import pytest
import torch
from timm.layers.activations import GELU as TimmGELU
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from proxies.base import Batch, get_proxy
from proxies.common import UndefinedScore
from proxies.naswot import activation_codes, hamming_kernel


def naive_kernel(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """K_ij = Σ over activation calls of the number of units where inputs i and j have the same
    sign of pre-activation, by an explicit loop over pairs of samples."""
    pre_activations = []
    handles = [
        m.register_forward_pre_hook(lambda m, args: pre_activations.append(args[0].clone()))
        for m in model.modules() if isinstance(m, (nn.ReLU, nn.GELU))
    ]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    n = len(x)
    kernel = np.zeros((n, n))
    for z in pre_activations:
        positive = (z.reshape(n, -1) > 0).numpy()
        for i in range(n):
            for j in range(n):
                hamming = np.count_nonzero(positive[i] != positive[j])
                kernel[i, j] += positive.shape[1] - hamming
    return kernel


def test_kernel_counts_agreeing_units_like_a_naive_pairwise_loop(small_model):
    make, batch = small_model
    model = make(0).train()
    expected = naive_kernel(model, batch.x)
    kernel = hamming_kernel(activation_codes(model, batch.x)).numpy()
    np.testing.assert_array_equal(kernel, expected)
    assert get_proxy("naswot")(model, batch) == pytest.approx(np.linalg.slogdet(expected)[1],
                                                               rel=1e-12)


def vit(depth: int) -> nn.Module:
    torch.manual_seed(0)
    return VisionTransformer(img_size=16, patch_size=4, num_classes=5, embed_dim=16, depth=depth,
                             num_heads=2, mlp_ratio=2.0)


def test_gelu_vit_gets_a_kernel_that_tells_inputs_and_architectures_apart(small_model):
    _, batch = small_model
    # The public code hooks ReLU only: on a GELU ViT it records nothing, K = 0 for every network.
    assert activation_codes(vit(2), batch.x, (nn.ReLU,)) == []
    kernel = hamming_kernel(activation_codes(vit(2), batch.x))
    off_diagonal = kernel[~torch.eye(len(batch.x), dtype=torch.bool)]
    assert len(torch.unique(off_diagonal)) > 1
    naswot = get_proxy("naswot")
    assert math.isfinite(naswot(vit(2), batch))
    assert naswot(vit(2), batch) != naswot(vit(3), batch)


def bias_free_relu_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 32, bias=False), nn.ReLU(),
                         nn.Linear(32, 32, bias=False), nn.ReLU(), nn.Linear(32, 5, bias=False))


def test_positive_scaling_of_a_relu_layer_leaves_the_score_unchanged(small_model):
    _, batch = small_model
    model = bias_free_relu_mlp()
    before = get_proxy("naswot")(model, batch)
    with torch.no_grad():
        model[1].weight.mul_(3.7)
    assert get_proxy("naswot")(model, batch) == before
    with torch.no_grad():
        model[1].weight[:16].neg_()  # flipped units feed layer 2 differently: its codes change
    assert get_proxy("naswot")(model, batch) != before


def test_permuting_the_batch_leaves_the_score_unchanged(small_model):
    _, batch = small_model
    permuted = Batch(batch.x.flip(0), batch.y.flip(0), batch.num_classes)
    naswot = get_proxy("naswot")
    assert naswot(vit(2), permuted) == pytest.approx(naswot(vit(2), batch), rel=1e-12)


def test_singular_kernel_is_reported_not_returned(small_model):
    _, batch = small_model
    x = batch.x.clone()
    x[1] = x[0]  # two identical inputs share every code: two equal rows of K
    with pytest.raises(UndefinedScore, match="singular"):
        get_proxy("naswot")(vit(2), Batch(x, batch.y, batch.num_classes))
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 5))
    with pytest.raises(UndefinedScore, match="no ReLU or GELU"):
        get_proxy("naswot")(linear, batch)


def test_timm_gelu_module_is_hooked_too(small_model):
    # timm's GELU class is not a subclass of nn.GELU; a model built with it must still give codes.
    _, batch = small_model
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 8), TimmGELU(), nn.Linear(8, 5))
    (codes,) = activation_codes(model, batch.x)
    assert codes.shape == (len(batch.x), 8)
