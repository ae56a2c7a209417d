"""The NTK proxies: −κ and tr/N of the kernel, checked on a linear model and under output scaling."""


import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from proxies.base import Batch, get_proxy


def batch_of(x: torch.Tensor, num_classes: int = 5) -> Batch:
    return Batch(x, torch.zeros(len(x), dtype=torch.long), num_classes)


def test_ntk_and_trace_of_linear_model_match_the_analytic_kernel():
    # Θ = C (X Xᵀ + 1) for f(x) = W x + b with C outputs (see test_ntk_kernel).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.randn(5, 3, 2, 2)
    flat = x.flatten(1).double().numpy()
    kernel = 3 * (flat @ flat.T + 1)
    eigenvalues = np.linalg.eigvalsh(kernel)
    batch = batch_of(x, 3)
    assert get_proxy("ntk")(model, batch) == pytest.approx(-eigenvalues[-1] / eigenvalues[0],
                                                           rel=1e-4)
    assert get_proxy("ntk_trace")(model, batch) == pytest.approx(np.trace(kernel) / 5, rel=1e-5)


class Scaled(nn.Module):
    """c · f(x) with a constant c: every J_i scales by c, so Θ scales by c² and κ is unchanged."""

    def __init__(self, model: nn.Module, factor: float):
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, x):
        return self.factor * self.model(x)


def test_scaling_the_output_leaves_ntk_unchanged_and_scales_the_trace_by_its_square():
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2,
                            mlp_ratio=2.0, num_classes=5)
    batch = batch_of(torch.randn(6, 3, 16, 16))
    ntk, trace = get_proxy("ntk"), get_proxy("ntk_trace")
    base_ntk, base_trace = ntk(vit, batch), trace(vit, batch)
    assert ntk(Scaled(vit, 3.0), batch) == pytest.approx(base_ntk, rel=1e-9)
    assert trace(Scaled(vit, 3.0), batch) == pytest.approx(9 * base_trace, rel=1e-9)
    assert ntk.note == ""  # the fast construction, within float64 resolution


def test_ntk_on_a_cnn_in_train_mode_says_it_used_the_naive_path():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    proxy = get_proxy("ntk")
    score = proxy(cnn, batch_of(torch.randn(4, 3, 8, 8)))
    assert score < -1  # κ ≥ 1
    assert proxy.note.startswith("naive NTK") and "BatchNorm" in proxy.note


def ill_conditioned_linear_case(kappa: float) -> tuple[nn.Module, Batch]:
    """f(x) = wᵀx on 4 inputs X = U diag(s) Vᵀ: Θ = X Xᵀ has condition number (s_1/s_4)² = kappa."""
    gen = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(16, 4, generator=gen, dtype=torch.float64))[0]
    singular = torch.tensor([1.0, 0.7, 0.3, kappa ** -0.5], dtype=torch.float64)
    x = (u * singular) @ v.T
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1, bias=False))
    return model, batch_of(x.reshape(4, 1, 4, 4).float(), 1)


def test_ntk_of_an_ill_conditioned_case_has_its_known_condition_number_in_float64():
    # The inputs are float32 (as every batch), so κ is that of the rounded X, within ~1e-7·κ.
    model, batch = ill_conditioned_linear_case(1e8)
    x = batch.x.double().flatten(1)
    eigenvalues = torch.linalg.eigvalsh(x @ x.T)
    expected = (eigenvalues[-1] / eigenvalues[0]).item()
    assert expected == pytest.approx(1e8, rel=0.05)
    proxy = get_proxy("ntk")
    assert proxy(model, batch) == pytest.approx(-expected, rel=1e-6)
    assert proxy.note == ""


def test_float32_kernels_say_when_kappa_is_beyond_their_resolution():
    model, batch = ill_conditioned_linear_case(1e8)
    proxy = get_proxy("ntk", kernel_dtype=torch.float32)
    proxy(model, batch)
    assert "beyond torch.float32 resolution" in proxy.note
    assert proxy.config()["kernel_dtype"] == "float32"
    assert get_proxy("ntk").config()["kernel_dtype"] == "float64"


@pytest.mark.parametrize("name", ["ntk", "ntk_trace", "vintk"])
def test_kernel_scores_do_not_depend_on_the_thread_count(name):
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                            mlp_ratio=2.0, num_classes=5)
    batch = batch_of(torch.randn(8, 3, 32, 32))
    scores = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            scores[threads] = get_proxy(name)(vit, batch)
        finally:
            torch.set_num_threads(1)
    assert scores[2] == pytest.approx(scores[1], rel=1e-9)
