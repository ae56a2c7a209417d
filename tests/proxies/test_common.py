import torch
from torch import nn

from proxies.base import Batch
from proxies.common import (
    cross_entropy,
    record_calls,
    replace_modules,
    weight_gradients,
    weight_layers,
    weights,
)


def test_weights_are_the_linear_and_conv_weights_only():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.LayerNorm(4 * 2 * 2), nn.Linear(16, 5),
    )
    model.frozen = nn.Linear(2, 2)
    model.frozen.weight.requires_grad_(False)
    assert weight_layers(model) == [model[0], model[5]]
    assert [id(w) for w in weights(model)] == [id(model[0].weight), id(model[5].weight)]


def test_record_calls_sees_every_call_in_order_and_removes_its_hooks():
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 3), act, nn.Linear(3, 3), act)
    x = torch.randn(2, 3)
    with record_calls(model, (nn.ReLU,)) as calls:
        out = model(x)
    assert [c.module for c in calls] == [act, act]
    assert torch.equal(calls[1].output, out)
    assert torch.equal(calls[0].input, model[0](x))
    model(x)
    assert len(calls) == 2


def test_recorded_outputs_stay_in_the_graph():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    with record_calls([model[1]]) as calls:
        loss = model(torch.randn(5, 3)).sum()
    (grad,) = torch.autograd.grad(loss, [calls[0].output])
    assert torch.allclose(grad, model[2].weight.expand(5, 4))


def test_replace_modules_swaps_every_match_in_nested_children():
    model = nn.Sequential(nn.ReLU(), nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    assert replace_modules(model, (nn.ReLU,), lambda old: nn.Identity()) == 2
    assert isinstance(model[0], nn.Identity) and isinstance(model[1][0], nn.Identity)


def test_weight_gradients_are_zero_for_an_unused_weight():
    used, unused = nn.Linear(2, 1), nn.Linear(2, 1)
    grads = weight_gradients(used(torch.ones(1, 2)).sum(), [used.weight, unused.weight])
    assert torch.equal(grads[0], torch.ones(1, 2))
    assert torch.equal(grads[1], torch.zeros(1, 2))


def test_cross_entropy_is_the_mean_over_the_batch():
    model = nn.Flatten()
    x = torch.tensor([[[[0.0, 0.0]]], [[[1.0, 0.0]]]])
    loss = cross_entropy(model, Batch(x, torch.tensor([0, 0]), 2))
    expected = (torch.log(torch.tensor(2.0)) + torch.log1p(torch.exp(torch.tensor(-1.0)))) / 2
    assert torch.isclose(loss, expected)
