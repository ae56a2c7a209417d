import math

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from proxies.base import Batch, get_proxy

THETA = 1.0
# Two channels over 2 x 2 positions with zero mean, equal norm and zero correlation: after a 1 x 1
# conv (or a Linear on the tokens) with unit-norm rows A, the channel correlation is A Aᵀ.
WHITE = torch.tensor([[[1.0, -1.0], [1.0, -1.0]], [[1.0, 1.0], [-1.0, -1.0]]])
A = torch.tensor([[1.0, 0.0], [math.cos(THETA), math.sin(THETA)]])


class ToTokens(nn.Module):
    """(B, C, H, W) -> (B, H·W, C), as a patch embedding lays out tokens."""

    def forward(self, x):
        return x.flatten(2).transpose(1, 2)


def mixing_model(kind: str, row_scale=(1.0, 1.0)) -> nn.Module:
    weight = A * torch.tensor(row_scale)[:, None]
    if kind == "conv":
        layer = nn.Conv2d(2, 2, 1)
        layer.weight.data = weight[:, :, None, None].clone()
        model = nn.Sequential(layer)
    else:
        layer = nn.Linear(2, 2)
        layer.weight.data = weight.clone()
        model = nn.Sequential(ToTokens(), layer)
    nn.init.normal_(layer.bias)  # a per-channel shift leaves the correlation unchanged
    return model


def white_batch(extra: torch.Tensor | None = None) -> Batch:
    x = WHITE[None] if extra is None else torch.cat([WHITE[None], extra])
    return Batch(x, torch.zeros(len(x), dtype=torch.long), 2)


@pytest.mark.parametrize("kind", ["conv", "tokens"])
@pytest.mark.parametrize("row_scale", [(1.0, 1.0), (2.0, -3.0)])
def test_known_channel_correlation_gives_its_minimum_eigenvalue(kind, row_scale):
    # corr = [[1, cos θ], [cos θ, 1]], eigenvalues 1 ± cos θ; scaling a channel (even by a
    # negative factor) does not change its correlations' eigenvalues.
    score = get_proxy("meco")(mixing_model(kind, row_scale), white_batch())
    assert score == pytest.approx(1.0 - math.cos(THETA), rel=1e-6)


def test_only_the_first_image_counts():
    model = mixing_model("conv")
    one = get_proxy("meco")(model, white_batch())
    assert get_proxy("meco")(model, white_batch(torch.randn(3, 2, 2, 2))) == one


def test_a_constant_channel_makes_its_layer_add_zero_not_nan():
    model = mixing_model("conv")
    with torch.no_grad():
        model[0].weight[1] = 0.0  # channel 1 is now its bias everywhere: correlation undefined
    assert get_proxy("meco")(model, white_batch()) == 0.0


def reference_meco(model: nn.Module, x: torch.Tensor, token_rows: bool = False) -> float:
    """Independently: the first image's Linear/Conv outputs, rows standardised by hand, the
    correlation Z Zᵀ / n, its smallest eigenvalue by the general np.linalg.eigvals. Layers with
    more rows than observations come out as round-off around 0, not as an exact 0."""
    outputs = []
    handles = [m.register_forward_hook(lambda m, i, o: outputs.append((m, o[0].detach())))
               for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        model(x[:1])
    for handle in handles:
        handle.remove()
    total = 0.0
    for module, out in outputs:
        if isinstance(module, nn.Linear):
            rows = out.reshape(len(out), -1) if token_rows else out.reshape(-1, out.shape[-1]).T
        else:
            rows = out.reshape(len(out), -1)
        rows = rows.double().numpy()
        if rows.shape[1] < 2:
            continue  # no observations to correlate over (the classifier's output)
        z = (rows - rows.mean(1, keepdims=True)) / rows.std(1, keepdims=True)
        total += np.linalg.eigvals(z @ z.T / rows.shape[1]).real.min()
    return total


def test_agrees_with_an_independent_numpy_implementation(small_model):
    make, batch = small_model
    model = make(0).train()
    expected = reference_meco(model, batch.x)
    assert expected > 1e-6  # not vacuous: some layers have fewer channels than observations
    assert get_proxy("meco")(model, batch) == pytest.approx(expected, rel=1e-6, abs=1e-10)


def test_token_variant_agrees_with_the_reference_codes_reshape():
    # 8 x 8 images in 4 x 4 patches: 5 tokens, fewer than the 16 channels, so the token
    # correlation has full rank where the channel correlation (16 x 16 over 5 tokens) has not.
    torch.manual_seed(0)
    model = VisionTransformer(img_size=8, patch_size=4, num_classes=5, embed_dim=16, depth=2,
                              num_heads=2, mlp_ratio=2.0)
    x = torch.randn(2, 3, 8, 8)
    batch = Batch(x, torch.zeros(2, dtype=torch.long), 5)
    expected = reference_meco(model, x, token_rows=True)
    assert expected > 1e-3
    assert get_proxy("meco_tokens")(model, batch) == pytest.approx(expected, rel=1e-6, abs=1e-10)
    assert get_proxy("meco")(model, batch) == pytest.approx(reference_meco(model, x), abs=1e-10)
