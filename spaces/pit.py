"""The PiT search spaces `pit-t/-xs/-s` (Heo et al., "Rethinking Spatial Dimensions of Vision
Transformers", ICCV 2021), as searched by TF-TAS (Zhou et al., CVPR 2022) and Auto-Prox (AAAI 2024).

The model is timm's `PoolingVisionTransformer`: an overlapping conv stem (16 px patches, stride 8),
three stages of pre-norm timm Blocks whose width is base_dim x heads of the stage (head dimension
base_dim), and between stages a depthwise-conv pooling that halves the grid and widens the channels
(the class token goes through a linear layer). One MLP ratio for all stages. Built without the
distillation token (`distilled=False`); timm's own initialisation. Parameters are counted in closed
form (`pit_params`), without building the model.

Heads must not decrease from stage to stage: the pooling convolution has groups = input channels,
so its output channels must be a multiple of its input channels. Auto-Prox's sampler draws from
exactly these ten non-decreasing head triples; its 100 ground-truth PiT networks
(gt_results/gt_pit.pth) lie in `pit-t`. Auto-Prox drew depths from ten fixed triples; here each
stage's depth is drawn independently from its three choices (docs/spaces.md), which contain them.

Architecture: {"base_dim": int, "mlp_ratio": int, "depth": [3 ints], "num_heads": [3 ints]}.
"""

from __future__ import annotations

import random
from itertools import combinations_with_replacement
from typing import ClassVar

from timm.models.pit import PoolingVisionTransformer
from torch import nn

from spaces.base import Arch, SearchSpace, register_space
from spaces.choices import pick, pick_each, positive_int, require_img_size, require_keys
from spaces.errors import BenchError
from spaces.params import attention_params, block_params, conv_params, linear_params, norm_params

PATCH_SIZE = 16
STRIDE = 8
STAGE_DEPTHS = ((1, 2, 3), (4, 6, 8), (2, 4, 6))
MLP_RATIOS = (2, 4, 6, 8)


def pit_params(base_dim: int, depth: list[int], heads: list[int], mlp_ratio: int, *,
               img_size: int, in_chans: int, num_classes: int) -> int:
    """The trainable parameters of timm's PoolingVisionTransformer with one base_dim and no
    distillation token, layer by layer, without building it."""
    widths = [base_dim * h for h in heads]
    grid = (img_size - PATCH_SIZE) // STRIDE + 1
    total = (conv_params(in_chans, widths[0], PATCH_SIZE)  # overlapping conv stem
             + grid * grid * widths[0]  # positions, one per patch (none for the class token)
             + widths[0])  # class token
    for stage, (width, blocks) in enumerate(zip(widths, depth)):
        if stage:  # pooling into the stage: depthwise-grouped 3x3 conv, linear for the class token
            previous = widths[stage - 1]
            total += conv_params(previous, width, 3, groups=previous) + linear_params(previous, width)
        total += blocks * block_params(width, attention_params(width, width), mlp_ratio)
    return total + norm_params(widths[-1]) + linear_params(widths[-1], num_classes)  # norm, head


class PiTSpace(SearchSpace):
    """A PiT space given by its base widths and per-stage head choices; subclasses set them."""

    base_dims: ClassVar[tuple[int, ...]]
    heads: ClassVar[tuple[int, ...]]

    def __init__(self, num_classes: int = 1000):
        self.num_classes = positive_int(self.name, "num_classes", num_classes)

    def head_triples(self) -> list[tuple[int, int, int]]:
        """The allowed num_heads: non-decreasing triples of the head choices."""
        return list(combinations_with_replacement(sorted(self.heads), 3))

    def choices(self) -> dict[str, list]:
        return {
            "base_dim": list(self.base_dims),
            "mlp_ratio": list(MLP_RATIOS),
            "depth (per stage)": [list(options) for options in STAGE_DEPTHS],
            "num_heads (per stage, non-decreasing)": list(self.heads),
        }

    def sample(self, rng: random.Random) -> Arch:
        return {
            "base_dim": rng.choice(self.base_dims),
            "mlp_ratio": rng.choice(MLP_RATIOS),
            "depth": [rng.choice(options) for options in STAGE_DEPTHS],
            "num_heads": list(rng.choice(self.head_triples())),
        }

    def validate(self, arch: Arch) -> Arch:
        require_keys(self.name, arch, ("base_dim", "mlp_ratio", "depth", "num_heads"))
        depth = arch["depth"]
        if not isinstance(depth, list) or len(depth) != len(STAGE_DEPTHS):
            raise BenchError(f"{self.name}: depth must be a list of 3 values, got {depth!r}")
        heads = pick_each(self.name, "num_heads", arch["num_heads"], self.heads, 3)
        if heads != sorted(heads):
            raise BenchError(f"{self.name}: num_heads {heads} decreases; PiT's pooling can only "
                             "widen channels, so heads must not decrease from stage to stage")
        return {
            "base_dim": pick(self.name, "base_dim", arch["base_dim"], self.base_dims),
            "mlp_ratio": pick(self.name, "mlp_ratio", arch["mlp_ratio"], MLP_RATIOS),
            "depth": [pick(self.name, f"depth[{i}]", d, options)
                      for i, (d, options) in enumerate(zip(depth, STAGE_DEPTHS))],
            "num_heads": heads,
        }

    def build(self, arch: Arch, img_size: int | None = None) -> nn.Module:
        arch = self.validate(arch)
        return PoolingVisionTransformer(
            img_size=self.resolution(img_size), patch_size=PATCH_SIZE, stride=STRIDE,
            base_dims=[arch["base_dim"]] * 3, depth=arch["depth"], heads=arch["num_heads"],
            mlp_ratio=arch["mlp_ratio"], num_classes=self.num_classes, in_chans=self.in_chans,
            distilled=False,
        )

    def count_params(self, arch: Arch, img_size: int | None = None) -> int:
        arch = self.validate(arch)
        return pit_params(arch["base_dim"], arch["depth"], arch["num_heads"], arch["mlp_ratio"],
                          img_size=self.resolution(img_size), in_chans=self.in_chans,
                          num_classes=self.num_classes)

    def check_img_size(self, size: int) -> None:
        """Raise unless the stem's stride-8 windows of 16 px tile the image exactly. timm's model
        runs at any size of 16 or more, but drops a border that does not fill a window."""
        require_img_size(self.name, size, minimum=PATCH_SIZE, multiple=STRIDE,
                         accepted=f"at least the patch size {PATCH_SIZE} and a multiple of the "
                                  f"stem stride {STRIDE}")


@register_space
class PiTTiny(PiTSpace):
    name = "pit-t"
    description = "PiT-T (TF-TAS, Auto-Prox): pooling ViT, base_dim 16-40, heads from {2,4,8}"
    base_dims = (16, 24, 32, 40)
    heads = (2, 4, 8)


@register_space
class PiTExtraSmall(PiTSpace):
    name = "pit-xs"
    description = "PiT-XS (TF-TAS): pooling ViT, base_dim 40-64, heads from {2,4,8}"
    base_dims = (40, 48, 56, 64)
    heads = (2, 4, 8)


@register_space
class PiTSmall(PiTSpace):
    name = "pit-s"
    description = "PiT-S (TF-TAS): pooling ViT, base_dim 36-72, heads from {3,6,12}"
    base_dims = (36, 48, 60, 72)
    heads = (3, 6, 12)
