import math

import pytest
import torch
from timm.layers import Attention
from torch import nn

from proxies.base import Batch, get_proxy


def ones_batch(chans: int = 1, size: int = 2) -> Batch:
    """Synflow reads only the batch's image shape: the values here are irrelevant."""
    return Batch(torch.randn(3, chans, size, size), torch.zeros(3, dtype=torch.long), 2)


@pytest.mark.parametrize("name", ["synflow", "synflow_ln"])
def test_synflow_of_a_product_of_two_matrices_is_log_of_twice_the_path_sum(name):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False))
    w1 = torch.tensor([[1.0, -2.0, 0.0, 1.0], [0.5, 1.0, -1.0, 2.0], [-3.0, 0.0, 1.0, 1.0]])
    w2 = torch.tensor([[1.0, -1.0, 2.0], [0.0, 2.0, -0.5]])
    with torch.no_grad():
        model[1].weight.copy_(w1)
        model[2].weight.copy_(w2)
    # R = 1^T |W2| |W1| 1: |W1| row sums (4, 4.5, 5); |W2| rows give 18.5 and 11.5, so R = 30.
    # Each layer carries the whole flow: sum |W2 * dR/dW2| = sum |W1 * dR/dW1| = R.
    assert get_proxy(name)(model, ones_batch()) == pytest.approx(math.log(2 * 30.0), 1e-12)
    assert torch.equal(model[1].weight, w1)  # the caller's model keeps its signs


@pytest.mark.parametrize("name", ["synflow", "synflow_ln"])
def test_a_deep_positive_chain_beyond_float32_range_stays_exact(name):
    depth = 70
    model = nn.Sequential(nn.Flatten(), *[nn.Linear(4, 4, bias=False) for _ in range(depth)])
    with torch.no_grad():
        for layer in model[1:]:
            layer.weight.fill_(1.0)
    # f(1) = 4^depth * 1 (4 entries), R = 4^(depth+1) ~ 5.6e42 > float32's 3.4e38; each of the
    # `depth` layers carries flow R.
    assert torch.isinf(torch.tensor(4.0) ** (depth + 1))
    expected = math.log(depth) + (depth + 1) * math.log(4)
    assert get_proxy(name)(model, ones_batch()) == pytest.approx(expected, rel=1e-12)


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
    image differ and attention is not uniform), one residual timm Attention, mean pool, a head.
    With `layer_norm`, a pre-norm block, t + attn(LN(t)), and a LayerNorm before the pool, with
    signed random γ and β (so that θ → |θ| matters)."""

    def __init__(self, fused: bool, heads: int = 2, layer_norm: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(3, 4)
        self.pos = nn.Parameter(torch.randn(1, 4, 4))
        self.attn = Attention(4, num_heads=heads, qkv_bias=True)
        self.attn.fused_attn = fused
        self.head = nn.Linear(4, 2)
        self.norm1, self.norm2 = (nn.LayerNorm(4), nn.LayerNorm(4)) if layer_norm else (
            nn.Identity(), nn.Identity())
        with torch.no_grad():
            for p in [*self.norm1.parameters(), *self.norm2.parameters()]:
                p.normal_()

    def forward(self, x):
        t = self.embed(x.flatten(2).transpose(1, 2)) + self.pos
        t = t + self.attn(self.norm1(t))
        return self.head(self.norm2(t).mean(dim=1))


def hand_flow(model: TokenAttention, fixed_attention: bool, layer_norm: bool = False) -> float:
    """log sum |W * dR/dW| with R written out by hand, attention probabilities held constant or
    not, LayerNorm (if the model has it) normalising each token."""
    p = {name: value.detach().abs().double().requires_grad_() for name, value in
         model.named_parameters()}
    heads = model.attn.num_heads
    head_dim = 4 // heads

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        if not layer_norm:
            return x
        centred = x - x.mean(dim=-1, keepdim=True)
        spread = torch.sqrt((centred ** 2).mean(dim=-1, keepdim=True) + getattr(model, name).eps)
        return centred / spread * p[f"{name}.weight"] + p[f"{name}.bias"]

    tokens = torch.ones(1, 4, 3, dtype=torch.float64)  # a 2 x 2 image of ones, 3 channels
    t = tokens @ p["embed.weight"].T + p["embed.bias"] + p["pos"]
    qkv = (norm(t, "norm1") @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]).reshape(
        1, 4, 3, heads, head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (batch, heads, tokens, head_dim)
    e = torch.exp(q @ k.transpose(-2, -1) * head_dim ** -0.5)
    probs = e / e.sum(dim=-1, keepdim=True)
    if fixed_attention:
        probs = probs.detach()
    out = (probs @ v).transpose(1, 2).reshape(1, 4, 4)
    t = t + out @ p["attn.proj.weight"].T + p["attn.proj.bias"]
    flow = (norm(t, "norm2").mean(dim=1) @ p["head.weight"].T + p["head.bias"]).sum()
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


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit-softmax"])
def test_synflow_ln_runs_layernorm_and_the_softmax_gradient(fused):
    model = TokenAttention(fused, heads=1, layer_norm=True)
    score = get_proxy("synflow_ln")(model, ones_batch(chans=3))
    assert score == pytest.approx(hand_flow(model, fixed_attention=False, layer_norm=True),
                                  rel=1e-12)
    # the flow through the query and key weights counts
    assert score != pytest.approx(hand_flow(model, fixed_attention=True, layer_norm=True),
                                  rel=1e-6)


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_synflow_ln_equals_synflow_without_layernorm_and_attention(network):
    make, batch = (lambda: mlp(None), ones_batch()) if network == "mlp" else (
        lambda: cnn(with_bn=True), ones_batch(chans=3, size=4))  # BatchNorm at initialisation
    assert get_proxy("synflow_ln")(make(), batch) == pytest.approx(
        get_proxy("synflow")(make(), batch), rel=1e-12)


def test_synflow_ln_removes_batchnorm_with_its_affine_map():
    bn_net = cnn(with_bn=True)
    with torch.no_grad():
        bn_net[1].weight.fill_(-2.0)
        bn_net[1].bias.fill_(0.5)
        bn_net[1].running_var.fill_(9.0)
    batch = ones_batch(chans=3, size=4)
    assert get_proxy("synflow_ln")(bn_net, batch) == pytest.approx(
        get_proxy("synflow_ln")(cnn(with_bn=False), batch), rel=1e-12)
    assert get_proxy("synflow")(bn_net, batch) != pytest.approx(
        get_proxy("synflow")(cnn(with_bn=False), batch), rel=1e-6)


def test_synflow_ln_does_not_see_the_scale_of_the_layer_before_a_layernorm():
    plain, scaled = mlp(nn.LayerNorm(6, eps=0.0)).double(), mlp(nn.LayerNorm(6, eps=0.0)).double()
    with torch.no_grad():
        scaled[1].weight.mul_(3.0)
        scaled[1].bias.mul_(3.0)
    # LN(3z) = LN(z), and that layer's flow is |3W| |dR/dW| / 3; synflow's affine-only norm
    # passes the factor 3 on.
    assert get_proxy("synflow_ln")(scaled, ones_batch()) == pytest.approx(
        get_proxy("synflow_ln")(plain, ones_batch()), rel=1e-12)
    assert get_proxy("synflow")(scaled, ones_batch()) != pytest.approx(
        get_proxy("synflow")(plain, ones_batch()), rel=1e-6)
