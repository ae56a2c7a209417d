"""The `micro` space: an AutoFormer-style ViT space scaled down to 28 x 28 grey images.

AutoFormer (Chen et al., ICCV 2021) shares the width across layers and chooses heads and MLP ratio
per layer, with the attention head dimension fixed (64 there, 16 here) so that heads change the
q/k/v width. Patches of 7 x 7 make 16 tokens plus the class token, which keeps a training on one
CPU thread under a minute. The choices are wide (an 8-wide single layer to a 96-wide six-layer
network) so that a short training spreads accuracies well beyond seed noise; the project trains
every network itself on Fashion-MNIST (bench/groundtruth.py, its Recipe) and ships the table as
the embedded benchmark.

The model is AutoFormer's `SubnetViT` with a fixed head dimension and no relative positions, built
exactly as for the shipped trainings: timm's LayerNorm (eps 1e-6) in the blocks, nn.LayerNorm
(eps 1e-5) at the end, and the patch convolution left at PyTorch's initialisation (not redrawn).
Changing any of these would change the trained networks, and so every shipped accuracy.
"""

from __future__ import annotations

from timm.layers import Attention, LayerNorm

from spaces.autoformer import AutoFormerSpace
from spaces.base import register_space
from spaces.choices import require_img_size
from spaces.params import attention_params

HEAD_DIM = 16


class FixedHeadDimAttention(Attention):
    """timm's Attention with the head dimension fixed at HEAD_DIM, as AutoFormer fixes it."""

    def __init__(self, dim: int, num_heads: int, **kwargs):
        super().__init__(dim, num_heads, attn_head_dim=HEAD_DIM, **kwargs)

    @staticmethod
    def param_count(dim: int, num_heads: int) -> int:
        """qkv and proj at width 16 x heads."""
        return attention_params(dim, HEAD_DIM * num_heads)


@register_space
class MicroSpace(AutoFormerSpace):
    name = "micro"
    description = (
        "AutoFormer-style ViT for 28x28 grey images (patch 7, head dim 16); the project's own "
        "Fashion-MNIST benchmark trains it on a CPU"
    )
    default_img_size = 28
    in_chans = 1
    embed_dims = (8, 16, 32, 48, 64, 96)
    depths = (1, 2, 3, 4, 5, 6)
    mlp_ratios = (1.0, 2.0, 3.0, 4.0)
    heads = (1, 2, 4)

    attn_layer = FixedHeadDimAttention
    patch_size = 7
    block_norm_layer = LayerNorm
    reset_modules = False

    def __init__(self, num_classes: int = 10):
        super().__init__(num_classes)

    def attn_layer_params(self, embed_dim: int, num_heads: int) -> int:
        return FixedHeadDimAttention.param_count(embed_dim, num_heads)

    def check_img_size(self, size: int) -> None:
        """Raise unless `size` holds at least one patch. A size that is not a multiple of the patch
        drops the border remainder, as the stride-7 patch convolution does; the position
        embedding has one entry per whole patch."""
        require_img_size(self.name, size, minimum=self.patch_size, multiple=1,
                         accepted=f"at least the patch size {self.patch_size}")
