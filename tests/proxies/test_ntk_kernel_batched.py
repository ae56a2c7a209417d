"""The fast NTK's per-sample weight gradients formed by one batched product over the samples give
the kernel of the per-sample loop they replaced, to 1e-13 in float64 (so the NTK proxies' cached
scores stay valid), on every project space."""

import pytest
import torch
from torch import nn

from proxies import ntk_kernel as kernels
from proxies.ntk_kernel import KernelAccumulator, ntk_kernel
from tests.proxies.conftest import project_spaces

AGREEMENT = 1e-13


def looped_linear_map(self: KernelAccumulator, a: torch.Tensor, g: torch.Tensor, name: str):
    """The construction before batching, kept as the reference: one product per sample."""
    n, groups, tokens, d_in = a.shape
    d_out = g.shape[-1]
    if (n * tokens) ** 2 * groups * (d_in + d_out + 1) < n * groups * d_in * d_out * (tokens + n):
        for group in range(groups):
            self.add_token_gram(a[:, group], g[:, group], name)
        return
    step = max(1, kernels.CHUNK_ELEMENTS // (n * groups * d_in))
    for start in range(0, d_out, step):
        g_slice = g[..., start:start + step].transpose(-1, -2)
        per_sample = a.new_empty(n, groups, g_slice.shape[-2], d_in)
        for i in range(n):
            torch.matmul(g_slice[i], a[i], out=per_sample[i])
        self.add_gram(per_sample, name)


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def test_batched_linear_map_equals_the_per_sample_loop_over_chunks_and_groups(monkeypatch):
    # Small chunks, so that the output units are cut into several slices, and 3 groups (a
    # grouped convolution): the shapes where the batched product has most to get wrong.
    monkeypatch.setattr(kernels, "CHUNK_ELEMENTS", 64)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4, 3, 5, 6, generator=gen, dtype=torch.float64)
    g = torch.randn(4, 3, 5, 7, generator=gen, dtype=torch.float64)
    batched, looped = KernelAccumulator(4, a.device), KernelAccumulator(4, a.device)
    batched.add_linear_map(a, g, "w")
    looped_linear_map(looped, a, g, "w")
    per_group = torch.einsum("ngtb,ngta->ngba", g, a).reshape(4, -1)
    assert relative_difference(batched.kernel, looped.kernel) <= AGREEMENT
    assert relative_difference(batched.forms["w"], looped.forms["w"]) <= AGREEMENT
    assert relative_difference(batched.kernel, per_group @ per_group.T) <= 1e-12


def model_and_images(space_name: str) -> tuple[nn.Module, torch.Tensor]:
    """A sampled architecture of the space in float64 and eval mode (BatchNorm then uses its
    running statistics, so the fast construction applies), and 6 images."""
    from spaces.base import get_space

    space = get_space(space_name)
    size = min(32, space.default_img_size)
    torch.manual_seed(0)
    model = space.build(space.sample_many(1, 0)[0], img_size=size).double().eval()
    gen = torch.Generator().manual_seed(0)
    return model, torch.randn(6, space.in_chans, size, size, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("space_name", project_spaces())
def test_fast_kernel_of_every_space_equals_the_per_sample_loops_kernel(space_name, monkeypatch):
    model, x = model_and_images(space_name)
    batched = ntk_kernel(model, x, "fast")
    monkeypatch.setattr(KernelAccumulator, "add_linear_map", looped_linear_map)
    looped = ntk_kernel(model, x, "fast")
    assert batched.method == looped.method == "fast"
    assert relative_difference(batched.kernel, looped.kernel) <= AGREEMENT
