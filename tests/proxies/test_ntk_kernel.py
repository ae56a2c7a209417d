"""The empirical NTK: analytic on a linear model, and the fast per-layer construction equal to
TE-NAS's per-sample backward passes on every kind of layer the spaces use."""

import pytest
import torch
from timm.models.pit import PoolingVisionTransformer
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from proxies.common import UndefinedScore
from proxies.ntk_kernel import FastNTKUnsupported, KernelAccumulator, condition_number, ntk_kernel


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def images(n: int, size: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, size, size, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("method", ["fast", "naive"])
def test_ntk_of_linear_model_is_outputs_times_gram_matrix_plus_bias_term(method):
    # f(x) = W x + b with C outputs: ∂Σ_c f_c/∂W_cd = x_d for every c, ∂Σ_c f_c/∂b_c = 1, so
    # Θ_ij = C x_iᵀx_j + C.
    torch.manual_seed(0)
    outputs = 5
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, outputs)).double()
    x = images(6, 4, channels=2)
    flat = x.flatten(1)
    expected = outputs * (flat @ flat.T + 1)
    result = ntk_kernel(model, x, method)
    assert result.method == method
    assert result.kernel.dtype == torch.float64
    assert relative_error(result.kernel, expected) < 1e-12


def test_linear_model_without_bias_has_no_bias_term():
    model = nn.Linear(7, 3, bias=False).double()
    x = images(4, 1, channels=7).flatten(1)
    assert relative_error(ntk_kernel(model, x).kernel, 3 * x @ x.T) < 1e-12


def test_token_gram_identity_equals_materialised_per_sample_gradients():
    # ⟨G_iᵀA_i, G_jᵀA_j⟩ = Σ_ts (A_iA_jᵀ)_ts (G_iG_jᵀ)_ts, and both against an explicit einsum.
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(5, 7, 3, generator=gen, dtype=torch.float64)
    g = torch.randn(5, 7, 4, generator=gen, dtype=torch.float64)
    per_sample = torch.einsum("ntb,nta->nba", g, a).reshape(5, -1)
    expected = per_sample @ per_sample.T
    identity, materialised = KernelAccumulator(5, a.device), KernelAccumulator(5, a.device)
    identity.add_token_gram(a, g)
    materialised.add_gram(torch.einsum("ntb,nta->nba", g, a))
    assert relative_error(identity.kernel, expected) < 1e-12
    assert relative_error(materialised.kernel, expected) < 1e-12


def tiny_vit() -> nn.Module:
    """timm ViT: patch conv, class token, position embedding, attention, LayerNorm, GELU MLP."""
    return VisionTransformer(img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2,
                             mlp_ratio=2.0, num_classes=5)


def tiny_autoformer() -> nn.Module:
    """AutoFormer's subnet with its relative position tables on keys and values."""
    autoformer = pytest.importorskip("spaces.autoformer")
    return autoformer.SubnetViT(16, [2.0, 3.0], [1, 2], img_size=32, in_chans=3, num_classes=5,
                                attn_layer=autoformer.RelativePositionAttention,
                                global_pool="token", norm_eps=1e-5)


def tiny_pit() -> nn.Module:
    """timm PiT: overlapping conv stem, 4-D position embedding, depthwise-conv pooling."""
    return PoolingVisionTransformer(img_size=32, patch_size=8, stride=4, base_dims=[4, 4],
                                    depth=[1, 1], heads=[2, 4], mlp_ratio=2, num_classes=5)


def tiny_cnn() -> nn.Module:
    """Convs with padding, stride, dilation and groups, each followed by BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=4), nn.BatchNorm2d(8),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )


@pytest.mark.parametrize("build, size", [(tiny_vit, 16), (tiny_autoformer, 32), (tiny_pit, 32),
                                         (tiny_cnn, 12)],
                         ids=["vit", "autoformer", "pit", "cnn-eval"])
def test_fast_kernel_equals_naive_kernel_in_float64(build, size):
    torch.manual_seed(0)
    model = build().double().eval()
    with torch.no_grad():  # BatchNorm's initial running statistics would make it an identity
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 2)
                module.bias.uniform_(-1, 1)
    x = images(5, size)
    fast, naive = ntk_kernel(model, x, "fast"), ntk_kernel(model, x, "naive")
    assert fast.method == "fast"
    assert relative_error(fast.kernel, naive.kernel) <= 1e-6


def test_train_mode_batchnorm_takes_the_naive_path_and_says_why():
    torch.manual_seed(0)
    model = tiny_cnn().double().train()
    x = images(4, 12)
    result = ntk_kernel(model, x)
    assert result.method == "naive"
    assert "BatchNorm" in result.reason
    with pytest.raises(FastNTKUnsupported):
        ntk_kernel(model, x, "fast")


class TwiceApplied(nn.Module):
    """One Linear layer applied twice: its per-sample gradient sums two uses."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 4)

    def forward(self, x):
        return self.layer(torch.tanh(self.layer(x)))


def test_module_called_twice_takes_the_naive_path_with_the_right_kernel():
    torch.manual_seed(0)
    model = TwiceApplied().double()
    x = images(3, 1, channels=4).flatten(1)
    result = ntk_kernel(model, x)
    assert result.method == "naive" and "called 2 times" in result.reason
    params = list(model.parameters())
    rows = [torch.cat([g.flatten() for g in torch.autograd.grad(model(x[i:i + 1]).sum(), params)])
            for i in range(3)]
    jacobian = torch.stack(rows)
    assert relative_error(result.kernel, jacobian @ jacobian.T) < 1e-12


class SequenceFirst(nn.Module):
    """A Linear layer applied to (tokens, batch, features), as batch_first=False attention does."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 3)

    def forward(self, x):
        return self.layer(x.transpose(0, 1)).transpose(0, 1).sum(dim=1)


def test_layer_that_does_not_see_the_batch_first_takes_the_naive_path():
    torch.manual_seed(0)
    model = SequenceFirst().double()
    x = torch.randn(3, 5, 4, dtype=torch.float64)
    result = ntk_kernel(model, x)
    assert result.method == "naive" and "first dimension" in result.reason
    tokens = x.sum(dim=1)  # Σ_t Σ_c (W x_t + b)_c: the gradient sees the summed tokens
    expected = 3 * (tokens @ tokens.T + 5 * 5)
    assert relative_error(result.kernel, expected) < 1e-12


def test_frozen_parameters_are_left_out_of_the_kernel():
    torch.manual_seed(0)
    model = tiny_vit().double()
    x = images(3, 16)
    full = ntk_kernel(model, x, "fast").kernel
    model.pos_embed.requires_grad_(False)
    model.blocks[0].attn.qkv.weight.requires_grad_(False)
    frozen_fast, frozen_naive = ntk_kernel(model, x, "fast"), ntk_kernel(model, x, "naive")
    assert relative_error(frozen_fast.kernel, frozen_naive.kernel) <= 1e-6
    assert relative_error(frozen_fast.kernel, full) > 1e-3


def test_condition_number_of_a_singular_kernel_is_undefined():
    assert condition_number(torch.diag(torch.tensor([4.0, 1.0]))) == pytest.approx(4.0)
    with pytest.raises(UndefinedScore):
        condition_number(torch.diag(torch.tensor([0.0, 1.0])))
