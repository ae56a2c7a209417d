"""The AutoFormer search spaces `autoformer-t/-s/-b` (Chen et al., ICCV 2021; code: microsoft/Cream).

A subnet shares one width across its layers and chooses depth, and per layer the number of heads
and the MLP ratio. The model is Cream's subnet rebuilt from timm blocks: conv patch embedding
(16 px), class token and learned absolute positions, pre-norm blocks whose attention has q/k/v
width 64 x heads (head dimension fixed at 64, qkv with bias) plus Cream's 2-D relative position
embedding on keys and values, final LayerNorm and a linear head on the class token. Parameters
are counted in closed form (`SubnetViT.param_count`), without building the model; the counts equal
Cream's `get_sampled_params_numel` (tests/spaces/test_autoformer.py checks the 6,776,776 example of
docs/spaces.md and published counts; tests/spaces/test_params.py checks the built models).

`SubnetViT` is also the model of `autoprox-t` (spaces/autoprox.py), which changes the attention,
the pooling and the LayerNorm epsilon, and of `micro` (spaces/micro.py), which changes the
attention, the patch size, the blocks' LayerNorm and the initialisation.
"""

from __future__ import annotations

import math
import random
from functools import partial
from typing import ClassVar

import torch
import torch.nn.functional as F
from timm.layers import Attention, PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Block, init_weights_vit_timm
from torch import nn

from spaces.base import Arch, SearchSpace, register_space
from spaces.choices import pick, pick_each, positive_int, require_img_size, require_keys
from spaces.params import attention_params, block_params, conv_params, linear_params, norm_params

PATCH_SIZE = 16
HEAD_DIM = 64
MAX_RELATIVE_POSITION = 14


class RelativePosition2D(nn.Module):
    """Cream's `RelativePosition2D_super` at a fixed head dimension: one table for the vertical and
    one for the horizontal offset between two patches, clipped to +-max_distance and summed.

    Row 0 of each table serves every pair that involves the class token; offsets d map to rows
    d + max_distance + 1. The tables do not depend on the resolution, only the index does.
    """

    def __init__(self, head_dim: int, max_distance: int):
        super().__init__()
        self.max_distance = max_distance
        self.vertical = nn.Parameter(torch.empty(2 * max_distance + 2, head_dim))
        self.horizontal = nn.Parameter(torch.empty(2 * max_distance + 2, head_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        trunc_normal_(self.vertical, std=0.02)
        trunc_normal_(self.horizontal, std=0.02)

    @staticmethod
    def param_count(head_dim: int, max_distance: int) -> int:
        """The vertical and the horizontal table."""
        return 2 * (2 * max_distance + 2) * head_dim

    def forward(self, num_tokens: int) -> torch.Tensor:
        """Embeddings (num_tokens, num_tokens, head_dim) for a class token and a square patch grid."""
        side = math.isqrt(num_tokens - 1)
        if side * side != num_tokens - 1:
            raise ValueError(f"{num_tokens} tokens are not a class token and a square patch grid")
        patch = torch.arange(side * side, device=self.vertical.device)
        rows, cols = self._table_index(patch // side), self._table_index(patch % side)
        return self.vertical[rows] + self.horizontal[cols]

    def _table_index(self, coord: torch.Tensor) -> torch.Tensor:
        offset = (coord[None, :] - coord[:, None]).clamp(-self.max_distance, self.max_distance)
        return F.pad(offset + self.max_distance + 1, (1, 0, 1, 0), value=0)


class RelativePositionAttention(Attention):
    """AutoFormer's attention: timm's Attention (its qkv and proj) with head dimension 64 and
    relative position embeddings added to the keys and to the values, as Cream's AttentionSuper:
    logits = q (k + r_k)^T * scale, output = softmax(logits) (v + r_v)."""

    def __init__(self, dim: int, num_heads: int, **kwargs):
        super().__init__(dim, num_heads, attn_head_dim=HEAD_DIM, **kwargs)
        self.rel_pos_k = RelativePosition2D(HEAD_DIM, MAX_RELATIVE_POSITION)
        self.rel_pos_v = RelativePosition2D(HEAD_DIM, MAX_RELATIVE_POSITION)

    @staticmethod
    def param_count(dim: int, num_heads: int) -> int:
        """qkv and proj at width 64 x heads, and the key and the value relative tables."""
        return (attention_params(dim, HEAD_DIM * num_heads)
                + 2 * RelativePosition2D.param_count(HEAD_DIM, MAX_RELATIVE_POSITION))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise NotImplementedError("relative position attention takes no mask")
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        rel_k, rel_v = self.rel_pos_k(N), self.rel_pos_v(N)
        logits = (q @ k.transpose(-2, -1) + torch.einsum("bhid,ijd->bhij", q, rel_k)) * self.scale
        attn = self.attn_drop(logits.softmax(dim=-1))
        out = attn @ v + torch.einsum("bhij,ijd->bhid", attn, rel_v)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, self.attn_dim)))


class SubnetViT(nn.Module):
    """A ViT with one width and per-layer heads and MLP ratios, from timm's PatchEmbed and Block.

    `attn_layer` is the blocks' attention class; `global_pool` is "token" (class token) or "avg"
    (mean of the patch tokens, class token excluded), taken after the final LayerNorm (eps
    `norm_eps`), whose kind the blocks share unless `block_norm_layer` is given.
    Initialisation is timm's ViT one: truncated normal (std 0.02) for linear weights, positions
    and class token; with `reset_modules` (timm's default) every other module that has
    `reset_parameters` (the patch convolution, the relative position tables) is drawn again.
    """

    def __init__(self, embed_dim: int, mlp_ratios: list[float], num_heads: list[int], *,
                 img_size: int, in_chans: int, num_classes: int, attn_layer: type[nn.Module],
                 global_pool: str, norm_eps: float, patch_size: int = PATCH_SIZE,
                 block_norm_layer: type[nn.Module] | None = None, reset_modules: bool = True):
        super().__init__()
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.global_pool = global_pool
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.Sequential(*(
            Block(embed_dim, heads, ratio, qkv_bias=True, norm_layer=block_norm_layer or norm_layer,
                  attn_layer=attn_layer)
            for ratio, heads in zip(mlp_ratios, num_heads)
        ))
        self.norm = norm_layer(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(partial(init_weights_vit_timm, needs_reset=reset_modules))
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = self.norm(self.blocks(tokens + self.pos_embed))
        pooled = tokens[:, 1:].mean(dim=1) if self.global_pool == "avg" else tokens[:, 0]
        return self.head(pooled)

    @staticmethod
    def param_count(embed_dim: int, mlp_ratios: list[float], attentions: list[int], *,
                    img_size: int, in_chans: int, num_classes: int, patch_size: int) -> int:
        """The trainable parameters, layer by layer, without building the model; `attentions`
        holds the parameters of each block's attention layer."""
        grid = img_size // patch_size  # timm's PatchEmbed drops a border remainder
        return (conv_params(in_chans, embed_dim, patch_size)  # patch embedding
                + embed_dim  # class token
                + (grid * grid + 1) * embed_dim  # absolute positions, class token included
                + sum(block_params(embed_dim, attention, ratio)
                      for attention, ratio in zip(attentions, mlp_ratios))
                + norm_params(embed_dim)  # final LayerNorm
                + linear_params(embed_dim, num_classes))  # head


class AutoFormerSpace(SearchSpace):
    """An AutoFormer-style space given by its choice table; subclasses set the table and name.

    Architecture: {"embed_dim": int, "depth": int, "mlp_ratio": [depth floats],
    "num_heads": [depth ints]}. The class attributes after the table say how the model is built.
    """

    embed_dims: ClassVar[tuple[int, ...]]
    depths: ClassVar[tuple[int, ...]]
    mlp_ratios: ClassVar[tuple[float, ...]]
    heads: ClassVar[tuple[int, ...]]

    attn_layer: ClassVar[type[nn.Module]] = RelativePositionAttention
    global_pool: ClassVar[str] = "token"
    norm_eps: ClassVar[float] = 1e-5  # Cream's LayerNormSuper keeps nn.LayerNorm's default
    patch_size: ClassVar[int] = PATCH_SIZE
    block_norm_layer: ClassVar[type[nn.Module] | None] = None
    reset_modules: ClassVar[bool] = True

    def __init__(self, num_classes: int = 1000):
        self.num_classes = positive_int(self.name, "num_classes", num_classes)

    def choices(self) -> dict[str, list]:
        return {
            "embed_dim": list(self.embed_dims),
            "depth": list(self.depths),
            "mlp_ratio (per layer)": list(self.mlp_ratios),
            "num_heads (per layer)": list(self.heads),
        }

    def sample(self, rng: random.Random) -> Arch:
        depth = rng.choice(self.depths)
        return {
            "embed_dim": rng.choice(self.embed_dims),
            "depth": depth,
            "mlp_ratio": [rng.choice(self.mlp_ratios) for _ in range(depth)],
            "num_heads": [rng.choice(self.heads) for _ in range(depth)],
        }

    def validate(self, arch: Arch) -> Arch:
        require_keys(self.name, arch, ("embed_dim", "depth", "mlp_ratio", "num_heads"))
        depth = pick(self.name, "depth", arch["depth"], self.depths)
        return {
            "embed_dim": pick(self.name, "embed_dim", arch["embed_dim"], self.embed_dims),
            "depth": depth,
            "mlp_ratio": pick_each(self.name, "mlp_ratio", arch["mlp_ratio"], self.mlp_ratios,
                                   depth),
            "num_heads": pick_each(self.name, "num_heads", arch["num_heads"], self.heads, depth),
        }

    def mutate(self, arch: Arch, rng: random.Random, prob: float = 0.2) -> Arch:
        """AutoFormer's mutation (Cream's evolutionary search): the depth redrawn with probability
        `prob` (a deeper child gets new layers of random choices, a shallower one loses its last
        layers), then the width and each layer's MLP ratio and heads, each with probability `prob`
        (Cream draws depth and width with a second probability; one is used here)."""
        arch = self.validate(arch)
        depth = rng.choice(self.depths) if rng.random() < prob else arch["depth"]
        added = range(depth - arch["depth"])
        ratios = arch["mlp_ratio"][:depth] + [rng.choice(self.mlp_ratios) for _ in added]
        heads = arch["num_heads"][:depth] + [rng.choice(self.heads) for _ in added]
        return {
            "embed_dim": rng.choice(self.embed_dims) if rng.random() < prob else arch["embed_dim"],
            "depth": depth,
            "mlp_ratio": [rng.choice(self.mlp_ratios) if rng.random() < prob else r for r in ratios],
            "num_heads": [rng.choice(self.heads) if rng.random() < prob else h for h in heads],
        }

    def build(self, arch: Arch, img_size: int | None = None) -> nn.Module:
        arch = self.validate(arch)
        return SubnetViT(arch["embed_dim"], arch["mlp_ratio"], arch["num_heads"],
                         img_size=self.resolution(img_size), in_chans=self.in_chans,
                         num_classes=self.num_classes, attn_layer=self.attn_layer,
                         global_pool=self.global_pool, norm_eps=self.norm_eps,
                         patch_size=self.patch_size, block_norm_layer=self.block_norm_layer,
                         reset_modules=self.reset_modules)

    def count_params(self, arch: Arch, img_size: int | None = None) -> int:
        arch = self.validate(arch)
        attentions = [self.attn_layer_params(arch["embed_dim"], heads) for heads in arch["num_heads"]]
        return SubnetViT.param_count(arch["embed_dim"], arch["mlp_ratio"], attentions,
                                     img_size=self.resolution(img_size), in_chans=self.in_chans,
                                     num_classes=self.num_classes, patch_size=self.patch_size)

    def attn_layer_params(self, embed_dim: int, num_heads: int) -> int:
        """Parameters of one `attn_layer` (the count beside its definition)."""
        return RelativePositionAttention.param_count(embed_dim, num_heads)

    def check_img_size(self, size: int) -> None:
        """Raise unless images of `size` pixels make a whole number of patches."""
        require_img_size(self.name, size, minimum=self.patch_size, multiple=self.patch_size,
                         accepted=f"a positive multiple of the patch size {self.patch_size}")


@register_space
class AutoFormerTiny(AutoFormerSpace):
    name = "autoformer-t"
    description = "AutoFormer-T (Chen et al. ICCV 2021): ViT subnets of 5.4-10.5M parameters"
    embed_dims = (192, 216, 240)
    depths = (12, 13, 14)
    mlp_ratios = (3.5, 4.0)
    heads = (3, 4)


@register_space
class AutoFormerSmall(AutoFormerSpace):
    name = "autoformer-s"
    description = "AutoFormer-S (Chen et al. ICCV 2021): ViT subnets of 13-35M parameters"
    embed_dims = (320, 384, 448)
    depths = (12, 13, 14)
    mlp_ratios = (3.0, 3.5, 4.0)
    heads = (5, 6, 7)


@register_space
class AutoFormerBase(AutoFormerSpace):
    name = "autoformer-b"
    description = "AutoFormer-B (Chen et al. ICCV 2021): ViT subnets of 42-77M parameters"
    embed_dims = (528, 576, 624)
    depths = (14, 15, 16)
    mlp_ratios = (3.0, 3.5, 4.0)
    heads = (9, 10)
