"""The `micro` space: an AutoFormer-style ViT space scaled down to 28 x 28 grey images.

AutoFormer (Chen et al., ICCV 2021) shares the width across layers and chooses heads and MLP ratio
per layer, with the attention head dimension fixed (64 there, 16 here) so that heads change the
q/k/v width. Patches of 7 x 7 make 16 tokens plus the class token, which keeps a training on one
CPU thread under a minute. The choices are wide (an 8-wide single layer to a 96-wide six-layer
network) so that a short training spreads accuracies well beyond seed noise; the project trains
every network itself on Fashion-MNIST (bench/groundtruth.py, its Recipe) and ships the table as
the embedded benchmark.
"""

from __future__ import annotations

import random

import torch
from timm.layers import Attention, PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from spaces.base import Arch, SearchSpace, register_space
from spaces.errors import BenchError

EMBED_DIMS = [8, 16, 32, 48, 64, 96]
DEPTHS = [1, 2, 3, 4, 5, 6]
MLP_RATIOS = [1.0, 2.0, 3.0, 4.0]
NUM_HEADS = [1, 2, 4]
HEAD_DIM = 16
PATCH_SIZE = 7


class FixedHeadDimAttention(Attention):
    """timm's Attention with the head dimension fixed at HEAD_DIM, as AutoFormer fixes it."""

    def __init__(self, dim: int, num_heads: int, **kwargs):
        super().__init__(dim, num_heads, attn_head_dim=HEAD_DIM, **kwargs)


class MicroViT(nn.Module):
    """Patch embedding, class token and learned absolute positions, pre-norm timm blocks with
    per-layer heads and MLP ratio, final LayerNorm and a linear head on the class token."""

    def __init__(self, embed_dim: int, mlp_ratios: list[float], num_heads: list[int],
                 img_size: int, in_chans: int, num_classes: int):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, PATCH_SIZE, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.Sequential(*(
            Block(embed_dim, heads, ratio, qkv_bias=True, attn_layer=FixedHeadDimAttention)
            for ratio, heads in zip(mlp_ratios, num_heads)
        ))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(init_vit_weights)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(len(tokens), -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def init_vit_weights(module: nn.Module) -> None:
    """timm's ViT initialisation: truncated normal (std 0.02) linear weights, zero biases."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@register_space
class MicroSpace(SearchSpace):
    name = "micro"
    description = (
        "AutoFormer-style ViT for 28x28 grey images (patch 7, head dim 16); the project's own "
        "Fashion-MNIST benchmark trains it on a CPU"
    )
    default_img_size = 28
    in_chans = 1
    num_classes = 10

    def choices(self) -> dict[str, list]:
        return {
            "embed_dim": EMBED_DIMS,
            "depth": DEPTHS,
            "mlp_ratio (per layer)": MLP_RATIOS,
            "num_heads (per layer)": NUM_HEADS,
        }

    def sample(self, rng: random.Random) -> Arch:
        depth = rng.choice(DEPTHS)
        return {
            "embed_dim": rng.choice(EMBED_DIMS),
            "depth": depth,
            "mlp_ratio": [rng.choice(MLP_RATIOS) for _ in range(depth)],
            "num_heads": [rng.choice(NUM_HEADS) for _ in range(depth)],
        }

    def validate(self, arch: Arch) -> Arch:
        keys = {"embed_dim", "depth", "mlp_ratio", "num_heads"}
        if set(arch) != keys:
            raise BenchError(f"micro architecture needs exactly the keys {sorted(keys)}, "
                             f"got {sorted(arch)}")
        depth = arch["depth"]
        if arch["embed_dim"] not in EMBED_DIMS:
            raise BenchError(f"embed_dim {arch['embed_dim']!r} not in {EMBED_DIMS}")
        if depth not in DEPTHS:
            raise BenchError(f"depth {depth!r} not in {DEPTHS}")
        for key, allowed in (("mlp_ratio", MLP_RATIOS), ("num_heads", NUM_HEADS)):
            values = arch[key]
            if not isinstance(values, list) or len(values) != depth:
                raise BenchError(f"{key} must be a list of {depth} values (one per layer)")
            if any(value not in allowed for value in values):
                raise BenchError(f"{key} {values} has a value not in {allowed}")
        return {
            "embed_dim": int(arch["embed_dim"]),
            "depth": int(depth),
            "mlp_ratio": [float(r) for r in arch["mlp_ratio"]],
            "num_heads": [int(h) for h in arch["num_heads"]],
        }

    def build(self, arch: Arch, img_size: int | None = None) -> nn.Module:
        arch = self.validate(arch)
        # A size that is not a multiple of the patch drops the border remainder, as the stride-7
        # patch convolution does; the position embedding has one entry per whole patch.
        size = img_size or self.default_img_size
        if size < PATCH_SIZE:
            raise BenchError(f"img_size {size} is smaller than the patch size {PATCH_SIZE}")
        return MicroViT(arch["embed_dim"], arch["mlp_ratio"], arch["num_heads"], size,
                        self.in_chans, self.num_classes)
