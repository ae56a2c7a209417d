import pytest
import torch
import torch.nn.functional as F
from timm.layers import Attention
from timm.models.vision_transformer import Block
from torch import nn

from proxies.base import Batch, get_proxy
from proxies.dss import attention_projections, gradient_nuclear_norm


class SubclassedAttention(Attention):
    """Stands for a space's own attention class (AutoFormer's adds relative positions)."""


class TinyViT(nn.Module):
    """1x1-conv patch embedding of a 2 x 2 image, position embedding, one timm Block (subclassed
    attention, GELU MLP), final LayerNorm, mean pool, linear head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Conv2d(3, 4, 1)
        self.pos = nn.Parameter(torch.randn(1, 4, 4))
        self.block = Block(4, num_heads=2, mlp_ratio=2.0, qkv_bias=True,
                           attn_layer=SubclassedAttention)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.norm(self.block(t)).mean(dim=1))


def hand_dss(model: TinyViT) -> float:
    """DSS with the forward pass written out by hand on |theta|: LayerNorm and softmax active."""
    p = {name: value.detach().abs().double().requires_grad_() for name, value in
         model.named_parameters()}

    def layer_norm(x, name):
        eps = model.get_submodule(name).eps
        mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + eps) * p[f"{name}.weight"] + p[f"{name}.bias"]

    def linear(x, name):
        return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    ones = torch.ones(1, 4, 3, dtype=torch.float64)  # four pixels (tokens) of three channels
    t = ones @ p["embed.weight"].view(4, 3).T + p["embed.bias"] + p["pos"]
    q, k, v = linear(layer_norm(t, "block.norm1"), "block.attn.qkv").reshape(
        1, 4, 3, 2, 2).permute(2, 0, 3, 1, 4).unbind(0)
    attn = torch.softmax(q @ k.transpose(-2, -1) * 2 ** -0.5, dim=-1)
    t = t + linear((attn @ v).transpose(1, 2).reshape(1, 4, 4), "block.attn.proj")
    hidden = F.gelu(linear(layer_norm(t, "block.norm2"), "block.mlp.fc1"))
    t = t + linear(hidden, "block.mlp.fc2")
    flow = linear(layer_norm(t, "norm").mean(dim=1), "head").sum()

    diversity = ["block.attn.qkv.weight", "block.attn.proj.weight"]
    saliency = ["block.mlp.fc1.weight", "block.mlp.fc2.weight", "head.weight"]
    grads = dict(zip(diversity + saliency,
                     torch.autograd.grad(flow, [p[n] for n in diversity + saliency])))
    nuclear = [torch.linalg.svdvals(grads[n]).sum() * torch.linalg.svdvals(p[n]).sum()
               for n in diversity]
    return (sum(nuclear) + sum((p[n] * grads[n]).abs().sum() for n in saliency)).item()


def test_dss_of_a_tiny_vit_matches_a_hand_computation():
    model = TinyViT()
    batch = Batch(torch.randn(2, 3, 2, 2), torch.tensor([0, 1]), 3)
    assert get_proxy("dss")(model, batch) == pytest.approx(hand_dss(model), rel=1e-10)


def test_attention_projections_are_found_through_subclasses():
    model = TinyViT()
    assert attention_projections(model) == [model.block.attn.qkv, model.block.attn.proj]


@pytest.mark.parametrize("rows", [3, 9], ids=["fewer-rows-than-columns", "more-rows"])
def test_gradient_nuclear_norm_equals_the_svd_of_the_explicit_gradient(rows):
    gen = torch.Generator().manual_seed(0)
    output_grads = torch.randn(rows, 7, dtype=torch.float64, generator=gen)
    inputs = torch.randn(rows, 5, dtype=torch.float64, generator=gen)
    expected = torch.linalg.svdvals(output_grads.T @ inputs).sum()
    assert gradient_nuclear_norm(output_grads, inputs).item() == pytest.approx(expected.item(),
                                                                              rel=1e-12)
