import math

import pytest
import torch
from timm.layers import Attention
from torch import nn

from proxies.base import Batch, get_proxy


def ones_batch(chans: int = 1, size: int = 2) -> Batch:
    """Synflow reads only the batch's image shape: the values here are irrelevant."""
    return Batch(torch.randn(3, chans, size, size), torch.zeros(3, dtype=torch.long), 2)


def test_synflow_of_a_product_of_two_matrices_is_log_of_twice_the_path_sum():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False))
    w1 = torch.tensor([[1.0, -2.0, 0.0, 1.0], [0.5, 1.0, -1.0, 2.0], [-3.0, 0.0, 1.0, 1.0]])
    w2 = torch.tensor([[1.0, -1.0, 2.0], [0.0, 2.0, -0.5]])
    with torch.no_grad():
        model[1].weight.copy_(w1)
        model[2].weight.copy_(w2)
    # R = 1^T |W2| |W1| 1: |W1| row sums (4, 4.5, 5); |W2| rows give 18.5 and 11.5, so R = 30.
    # Each layer carries the whole flow: sum |W2 * dR/dW2| = sum |W1 * dR/dW1| = R.
    assert get_proxy("synflow")(model, ones_batch()) == pytest.approx(math.log(2 * 30.0), 1e-12)
    assert torch.equal(model[1].weight, w1)  # the caller's model keeps its signs


def test_a_deep_positive_chain_beyond_float32_range_stays_exact():
    depth = 70
    model = nn.Sequential(nn.Flatten(), *[nn.Linear(4, 4, bias=False) for _ in range(depth)])
    with torch.no_grad():
        for layer in model[1:]:
            layer.weight.fill_(1.0)
    # f(1) = 4^depth * 1 (4 entries), R = 4^(depth+1) ~ 5.6e42 > float32's 3.4e38; each of the
    # `depth` layers carries flow R.
    assert torch.isinf(torch.tensor(4.0) ** (depth + 1))
    expected = math.log(depth) + (depth + 1) * math.log(4)
    assert get_proxy("synflow")(model, ones_batch()) == pytest.approx(expected, rel=1e-12)


def mlp(norm: nn.Module | None) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(4, 6), norm or nn.Identity(), nn.GELU(), nn.Linear(6, 2)]
    return nn.Sequential(*layers)


def test_layernorm_is_neutralised_to_its_affine_map():
    without = get_proxy("synflow")(mlp(None), ones_batch())
    assert get_proxy("synflow")(mlp(nn.LayerNorm(6)), ones_batch()) == pytest.approx(without)
    # |gamma| = 2 scales the path through it by 2, exactly as doubling the Linear before it does
    # and |beta| = 0.3 adds to the bias: |gamma| (|W| x + |b|) + |beta| = |2W| x + (2|b| + 0.3)
    scaled_norm, scaled_linear = mlp(nn.LayerNorm(6)).double(), mlp(None).double()
    with torch.no_grad():
        scaled_norm[2].weight.fill_(-2.0)
        scaled_norm[2].bias.fill_(-0.3)
        scaled_linear[1].weight.mul_(2.0)
        scaled_linear[1].bias.copy_(2 * scaled_linear[1].bias.abs() + 0.3)
    assert get_proxy("synflow")(scaled_norm, ones_batch()) == pytest.approx(
        get_proxy("synflow")(scaled_linear, ones_batch()), rel=1e-12)


def cnn(with_bn: bool) -> nn.Sequential:
    torch.manual_seed(0)
    norm = [nn.BatchNorm2d(4)] if with_bn else []
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), *norm, nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def test_batchnorm_is_neutralised_whatever_its_running_statistics():
    bn_net = cnn(with_bn=True)
    with torch.no_grad():  # as if trained: eval-mode BatchNorm would now shift and shrink
        bn_net[1].running_mean.fill_(5.0)
        bn_net[1].running_var.fill_(9.0)
    batch = ones_batch(chans=3, size=4)
    assert get_proxy("synflow")(bn_net, batch) == pytest.approx(
        get_proxy("synflow")(cnn(with_bn=False), batch), rel=1e-12)


class TokenAttention(nn.Module):
    """Pixels as tokens, a Linear embedding plus position embedding (so that tokens of an all-ones
    image differ and attention is not uniform), one residual timm Attention, mean pool, a head."""

    def __init__(self, fused: bool):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(3, 4)
        self.pos = nn.Parameter(torch.randn(1, 4, 4))
        self.attn = Attention(4, num_heads=2, qkv_bias=True)
        self.attn.fused_attn = fused
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        t = self.embed(x.flatten(2).transpose(1, 2)) + self.pos
        return self.head((t + self.attn(t)).mean(dim=1))


def hand_flow(model: TokenAttention, fixed_attention: bool) -> float:
    """log sum |W * dR/dW| with R written out by hand, attention probabilities held constant or
    not."""
    p = {name: value.detach().abs().double().requires_grad_() for name, value in
         model.named_parameters()}
    tokens = torch.ones(1, 4, 3, dtype=torch.float64)  # a 2 x 2 image of ones, 3 channels
    t = tokens @ p["embed.weight"].T + p["embed.bias"] + p["pos"]
    qkv = (t @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]).reshape(1, 4, 3, 2, 2)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (batch, heads, tokens, head_dim)
    probs = torch.softmax(q @ k.transpose(-2, -1) * 2 ** -0.5, dim=-1)
    if fixed_attention:
        probs = probs.detach()
    out = (probs @ v).transpose(1, 2).reshape(1, 4, 4)
    t = t + out @ p["attn.proj.weight"].T + p["attn.proj.bias"]
    flow = (t.mean(dim=1) @ p["head.weight"].T + p["head.bias"]).sum()
    weights = [p[n] for n in ("embed.weight", "attn.qkv.weight", "attn.proj.weight",
                              "head.weight")]
    grads = torch.autograd.grad(flow, weights)
    return math.log(sum((w * g).abs().sum() for w, g in zip(weights, grads)).item())


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit-softmax"])
def test_attention_probabilities_are_held_fixed(fused):
    model = TokenAttention(fused)
    score = get_proxy("synflow")(model, ones_batch(chans=3))
    assert score == pytest.approx(hand_flow(model, fixed_attention=True), rel=1e-12)
    assert score != pytest.approx(hand_flow(model, fixed_attention=False), rel=1e-6)
