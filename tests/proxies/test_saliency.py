import pytest
import torch
from timm.layers import Attention
from torch import nn
from torch.func import functional_call

from proxies.base import Batch, get_proxy


def linear_model_and_batch() -> tuple[nn.Module, Batch]:
    """Logits W x + b on flattened 1 x 2 x 2 images, 3 classes, in float64."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    x = torch.randn(6, 1, 2, 2, dtype=torch.float64)
    return model, Batch(x, torch.tensor([0, 1, 2, 0, 1, 2]), 3)


def closed_form_gradient(model: nn.Module, batch: Batch) -> torch.Tensor:
    """dL/dW of the mean cross-entropy of a linear model: (softmax(XW^T + b) - Y)^T X / B."""
    w, b = model[1].weight.detach(), model[1].bias.detach()
    x = batch.x.flatten(1)
    probs = torch.softmax(x @ w.T + b, dim=1)
    onehot = nn.functional.one_hot(batch.y, 3).double()
    return (probs - onehot).T @ x / len(x)


@pytest.mark.parametrize(("name", "formula"), [
    ("grad_norm", lambda w, g: g.norm()),
    ("snip", lambda w, g: (w * g).abs().sum()),
    ("plain", lambda w, g: (w * g).sum()),
])
def test_gradient_proxies_of_a_linear_model_match_the_closed_form(name, formula):
    model, batch = linear_model_and_batch()
    # the bias's gradient is not a weight's: it must not enter
    expected = formula(model[1].weight.detach(), closed_form_gradient(model, batch)).item()
    assert get_proxy(name)(model, batch) == pytest.approx(expected, rel=1e-12)


def test_grasp_matches_a_naive_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2, bias=False))
    model = model.double()
    x = torch.randn(5, 1, 2, 2, dtype=torch.float64)
    batch = Batch(x, torch.tensor([0, 1, 1, 0, 1]), 2)
    names, shapes = ["1.weight", "3.weight"], [(3, 4), (2, 3)]
    theta = torch.cat([model.get_parameter(n).detach().flatten() for n in names])

    def loss(flat: torch.Tensor) -> torch.Tensor:
        w1, w2 = flat[:12].view(shapes[0]), flat[12:].view(shapes[1])
        logits = functional_call(model, {names[0]: w1, names[1]: w2}, (x,))
        return nn.functional.cross_entropy(logits, batch.y)

    hessian = torch.autograd.functional.hessian(loss, theta)
    grad = torch.autograd.functional.jacobian(loss, theta)
    expected = -(theta @ hessian @ grad).item()
    assert get_proxy("grasp")(model, batch) == pytest.approx(expected, rel=1e-10)


def test_grasp_on_fused_attention_equals_grasp_on_explicit_attention(small_model):
    make, batch = small_model
    model = make(0)
    fused = get_proxy("grasp")(model, batch)
    for m in model.modules():
        if isinstance(m, Attention):
            m.fused_attn = False
    assert get_proxy("grasp")(model, batch) == pytest.approx(fused, rel=1e-4)


def test_l2_norm_sums_frobenius_norms_of_weights_only():
    model = nn.Sequential(nn.Conv2d(1, 1, 2), nn.Flatten(), nn.Linear(1, 4))
    with torch.no_grad():
        model[0].weight.fill_(-1.0)  # ||.|| = 2
        model[2].weight.fill_(3.0)  # ||.|| = 6
        model[0].bias.fill_(100.0)
        model[2].bias.fill_(100.0)
    batch = Batch(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long), 4)
    assert get_proxy("l2_norm")(model, batch) == pytest.approx(8.0)


class SmallDevice(torch.nn.Module):
    """A model that runs out of (simulated) GPU memory on more than 4 images at once."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        if len(x) > 4:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.model(x)


def test_out_of_memory_sums_the_loss_gradient_over_parts_of_the_batch():
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2,
                            mlp_ratio=2.0, num_classes=5)
    gen = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(8, 3, 16, 16, generator=gen), torch.randint(5, (8,), generator=gen), 5)
    for name in ("grad_norm", "snip", "plain"):
        whole, parts = get_proxy(name), get_proxy(name)
        expected = whole(vit, batch)
        assert parts(SmallDevice(vit), batch) == pytest.approx(expected, rel=1e-5)
        assert "2 parts" in parts.note and whole.note == ""
