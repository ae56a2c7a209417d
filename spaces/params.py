"""Parameter counts of the standard layers, summed by the closed forms beside each space's model.

Importing a benchmark counts the parameters of every one of its architectures, so the spaces add
up their layers instead of building models (tests/spaces/test_params.py checks every closed form
against the built model).
"""

from __future__ import annotations


def linear_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """nn.Linear: an n_out x n_in weight, and n_out biases."""
    return n_out * n_in + (n_out if bias else 0)


def conv_params(c_in: int, c_out: int, kernel: int, *, groups: int = 1, bias: bool = True) -> int:
    """nn.Conv2d with a square kernel: c_out filters over c_in / groups channels, and c_out biases."""
    return c_out * (c_in // groups) * kernel * kernel + (c_out if bias else 0)


def norm_params(channels: int) -> int:
    """LayerNorm or BatchNorm2d: a scale and a shift per channel (BatchNorm's statistics are
    buffers, not parameters)."""
    return 2 * channels


def attention_params(dim: int, width: int) -> int:
    """timm's Attention with qkv bias and q/k/v width `width`: qkv, then proj back to `dim`."""
    return linear_params(dim, 3 * width) + linear_params(width, dim)


def block_params(dim: int, attention: int, mlp_ratio: float) -> int:
    """timm's pre-norm ViT Block whose attention has `attention` parameters: norm1, attention,
    norm2, and the MLP's fc1 and fc2 with hidden width int(dim x mlp_ratio), as timm rounds it."""
    hidden = int(dim * mlp_ratio)
    return (norm_params(dim) + attention + norm_params(dim)
            + linear_params(dim, hidden) + linear_params(hidden, dim))
