import pytest
import torch
from timm.layers import Mlp
from torch import nn

from proxies.base import Batch, get_proxy
from proxies.common import UndefinedScore


class TokenMlp(nn.Module):
    """Pixels as tokens [B, N, C] through a timm Mlp, mean over tokens, a linear head."""

    def __init__(self, act_layer=nn.GELU):
        super().__init__()
        self.mlp = Mlp(3, hidden_features=6, act_layer=act_layer)
        self.head = nn.Linear(3, 4)

    def forward(self, x):
        return self.head(self.mlp(x.flatten(2).transpose(1, 2)).mean(dim=1))


def token_mlp(act_layer=nn.GELU) -> tuple[nn.Module, Batch]:
    torch.manual_seed(0)
    model = TokenMlp(act_layer).double()
    x = torch.randn(3, 3, 2, 2, dtype=torch.float64)  # 4 tokens of 3 channels, hidden width 6
    return model, Batch(x, torch.tensor([0, 3, 1]), 4)


def hidden_activation_and_gradient(model: TokenMlp, batch: Batch) -> tuple[list, list]:
    """a = act(fc1(tokens)) and dL/da, by a hand-written forward pass: a[b][n][c], g[b][n][c]."""
    a = model.mlp.act(model.mlp.fc1(batch.x.flatten(2).transpose(1, 2)))
    a.retain_grad()
    logits = model.head(model.mlp.fc2(a).mean(dim=1))
    nn.functional.cross_entropy(logits, batch.y).backward()
    return a.detach().tolist(), a.grad.tolist()


def naive_fisher(a: list, g: list, sum_over_tokens: bool = True) -> float:
    """0.5 * mean_b (sum over tokens of a*g)^2 summed over channels, by explicit loops; or, with
    sum_over_tokens=False, the public code's reading (sum over channels, one term per token)."""
    batch, tokens, channels = len(a), len(a[0]), len(a[0][0])
    outer, inner = (channels, tokens) if sum_over_tokens else (tokens, channels)
    total = 0.0
    for i in range(outer):
        squares = []
        for b in range(batch):
            s = 0.0
            for j in range(inner):
                n, c = (j, i) if sum_over_tokens else (i, j)
                s += a[b][n][c] * g[b][n][c]
            squares.append(s * s)
        total += 0.5 * sum(squares) / batch
    return total


def test_fisher_of_a_token_mlp_matches_a_naive_loop_that_sums_over_tokens():
    model, batch = token_mlp()
    a, g = hidden_activation_and_gradient(model, batch)
    expected = naive_fisher(a, g)
    channel_sum = naive_fisher(a, g, sum_over_tokens=False)
    score = get_proxy("fisher")(model, batch)
    assert score == pytest.approx(expected, rel=1e-12)
    assert abs(score - channel_sum) > 0.1 * expected  # the [B, N, C] pitfall gives another value


def test_a_relu_inside_a_timm_mlp_is_counted_once_as_channels_last():
    model, batch = token_mlp(act_layer=nn.ReLU)
    a, g = hidden_activation_and_gradient(model, batch)
    assert get_proxy("fisher")(model, batch) == pytest.approx(naive_fisher(a, g), rel=1e-12)


def test_fisher_of_a_cnn_sums_over_spatial_positions_of_each_relu_channel():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),  # [B, C, H, W]
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 6), nn.ReLU(),  # [B, C]
        nn.Linear(6, 3),
    ).double()
    batch = Batch(torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1]), 3)
    model.train()  # as the proxy runs it: BatchNorm on batch statistics
    x, relu_outputs = batch.x, []
    for layer in model:
        x = layer(x)
        if isinstance(layer, nn.ReLU):
            x.retain_grad()
            relu_outputs.append(x)
    nn.functional.cross_entropy(x, batch.y).backward()
    expected = 0.0
    for a in relu_outputs:
        a, g = a.detach().reshape(*a.shape[:2], -1), a.grad.reshape(*a.shape[:2], -1)
        for c in range(a.shape[1]):
            per_sample = [sum(a[b, c, p] * g[b, c, p] for p in range(a.shape[2])).item()
                          for b in range(a.shape[0])]
            expected += 0.5 * sum(s * s for s in per_sample) / len(per_sample)
    assert get_proxy("fisher")(model, batch) == pytest.approx(expected, rel=1e-12)


def test_a_network_without_hidden_activations_has_no_fisher_score():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    batch = Batch(torch.randn(2, 1, 2, 2), torch.tensor([0, 1]), 2)
    with pytest.raises(UndefinedScore):
        get_proxy("fisher")(model, batch)
