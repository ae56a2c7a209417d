"""The empirical NTK: analytic on a linear model, and the fast per-layer construction equal to
TE-NAS's per-sample backward passes on every kind of layer the spaces use."""

import pytest
import torch
from timm.models.pit import PoolingVisionTransformer
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from proxies import ntk_kernel as kernels
from proxies.common import UndefinedScore
from proxies.ntk_kernel import FastNTKUnsupported, KernelAccumulator, condition_number, ntk_kernel
from tests.proxies.conftest import ExtremeChoice, project_spaces


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
    identity.add_token_gram(a, g, "w")
    materialised.add_gram(torch.einsum("ntb,nta->nba", g, a), "w")
    assert torch.allclose(identity.forms["w"], materialised.forms["w"], rtol=1e-12)
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


class MultiheadAttentionModel(nn.Module):
    """torch's MultiheadAttention: its out_proj Linear is used through F.linear, never called."""

    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.attention(x, x, x)[0].mean(dim=1))


class TiedWeights(nn.Module):
    """A Linear layer whose weight is also the output map, through F.linear (tied embeddings)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(6, 6)

    def forward(self, x):
        return torch.nn.functional.linear(torch.tanh(self.embed(x)), self.embed.weight).sum(dim=1)


class IndexedToken(nn.Module):
    """A (1, D) parameter used as p[0], not by broadcasting over the batch dimension."""

    def __init__(self):
        super().__init__()
        self.token = nn.Parameter(torch.randn(1, 6))
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.tanh(x + self.token[0]))


class SamePaddedConv(nn.Module):
    """A convolution to 1 channel with padding="same": no closed-form rule, and a weight whose
    first dimension is 1, like a class token's."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding="same")
        self.head = nn.Linear(5 * 5, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)).flatten(1))


class DropoutAttention(nn.Module):
    """AutoFormer's relative-position attention with attention dropout p > 0, in train mode."""

    def __init__(self):
        super().__init__()
        from spaces.autoformer import RelativePositionAttention

        self.attention = RelativePositionAttention(8, 2, attn_drop=0.3)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.attention(x).mean(dim=1))


@pytest.mark.parametrize("build, shape", [
    (MultiheadAttentionModel, (5, 4, 8)), (TiedWeights, (5, 6)), (IndexedToken, (5, 6)),
    (SamePaddedConv, (5, 1, 5, 5)), (DropoutAttention, (5, 5, 8)),
], ids=["multihead-attention", "tied-weights", "indexed-token", "same-padding", "dropout"])
def test_models_the_fast_rules_do_not_know_get_the_naive_kernel_and_say_why(build, shape):
    torch.manual_seed(0)
    model = build().double().train()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.manual_seed(2)
    result = ntk_kernel(model, x)
    torch.manual_seed(2)
    naive = ntk_kernel(model, x, "naive")
    assert result.method == "naive" and result.reason
    assert torch.equal(result.kernel, naive.kernel)
    assert condition_number(result.kernel) == condition_number(naive.kernel)


def parameter_groups(model: nn.Module) -> dict[str, list[str]]:
    """Parameter names grouped by their name with layer indices removed (blocks.3.mlp.fc1.weight
    -> blocks.mlp.fc1.weight): one group per kind of parameter."""
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        key = ".".join(part for part in name.split(".") if not part.isdigit())
        groups.setdefault(key, []).append(name)
    return groups


def smallest_model_of(space_name: str) -> tuple[nn.Module, torch.Tensor]:
    """The smallest architecture of a space in float64 and eval mode (BatchNorm with random
    running statistics), and 3 images at the smallest resolution the space builds."""
    from spaces.base import get_space

    space = get_space(space_name)
    size = min(32, space.default_img_size)
    torch.manual_seed(0)
    model = space.build(space.sample(ExtremeChoice(False)), img_size=size).double().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    return model, images(3, size, channels=space.in_chans)


@pytest.mark.parametrize("space_name", project_spaces())
def test_each_parameter_group_alone_gives_the_naive_kernel(space_name):
    # A group whose share of Θ is tiny (a relative-position table: 1e-12) is invisible in a
    # whole-kernel comparison; alone, with every other parameter frozen, it is all of Θ.
    model, x = smallest_model_of(space_name)
    groups = parameter_groups(model)
    assert len(groups) >= 3
    for group, names in groups.items():
        for name, p in model.named_parameters():
            p.requires_grad_(name in names)
        naive = ntk_kernel(model, x, "naive").kernel
        if naive.abs().max() == 0:
            continue  # a group the output does not depend on
        fast = ntk_kernel(model, x, "fast").kernel
        assert relative_error(fast, naive) <= 1e-10, group


def test_a_parameter_group_the_fast_rules_drop_is_caught_by_the_check(monkeypatch):
    # LayerNorm weights hold a tiny share of a ViT's ‖Θ‖ (3.7e-7 in timm's): below any whole-kernel
    # tolerance.
    def without_layernorm_weight(module, a, g, kernel, prefix):
        module.weight.requires_grad_(False)
        try:
            normalisation_rule(module, a, g, kernel, prefix)
        finally:
            module.weight.requires_grad_(True)

    normalisation_rule = kernels.normalisation_rule
    monkeypatch.setattr(kernels, "normalisation_rule", without_layernorm_weight)
    torch.manual_seed(0)
    model = tiny_autoformer().double()  # nn.LayerNorm, which has a closed-form rule
    result = ntk_kernel(model, images(3, 32))
    assert result.method == "naive"
    assert "norm" in result.reason and "weight" in result.reason and "check failed" in result.reason


def test_out_of_memory_builds_the_kernel_from_pairs_of_blocks(monkeypatch):
    # As if the device held the fast construction of at most 4 samples at once.
    fast = kernels.fast_ntk

    def small_device(model, x):
        if len(x) > 4:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return fast(model, x)

    torch.manual_seed(0)
    model = tiny_vit().double()
    x = images(8, 16)
    whole = ntk_kernel(model, x)
    monkeypatch.setattr(kernels, "fast_ntk", small_device)
    blocked = ntk_kernel(model, x)
    assert blocked.blocks == 4 and blocked.method == "fast"
    assert relative_error(blocked.kernel, whole.kernel) < 1e-12


def test_out_of_memory_with_interacting_samples_is_not_split(monkeypatch):
    def no_memory(model, x):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(kernels, "naive_ntk", no_memory)
    model = tiny_cnn().double().train()  # BatchNorm on batch statistics: blocks would differ
    with pytest.raises(torch.OutOfMemoryError):
        ntk_kernel(model, images(4, 12))
