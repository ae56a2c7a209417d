import numpy as np
import pytest
import torch
from torch import nn

from proxies.base import Batch, get_proxy
from proxies.common import UndefinedScore
from spaces.errors import BenchError

K = 1e-5


def expected_score(eigenvalues) -> float:
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    return float(-np.sum(np.log(eigenvalues + K) + 1.0 / (eigenvalues + K)))


def test_linear_model_has_identical_jacobians_and_an_all_ones_correlation():
    # f(x) = W x + b: J_i = Σ_c W_c (the column sums) for every input, so corr(J) is the all-ones
    # matrix, whose eigenvalues are N (once) and 0 (N - 1 times).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 4))
    batch = Batch(torch.randn(5, 2, 3, 3), torch.zeros(5, dtype=torch.long), 4)
    assert get_proxy("jacob_cov")(model, batch) == pytest.approx(
        expected_score([5, 0, 0, 0, 0]), rel=1e-9)


class HalfSquaredNorm(nn.Module):
    """f(x) = ½‖x‖², whose input Jacobian is x itself."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(1, keepdim=True)


def test_uncorrelated_jacobians_give_the_identity_correlation():
    # Rows with zero mean, equal norm and pairwise orthogonal: corr(J) = I, all eigenvalues 1.
    rows = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]])
    batch = Batch(rows.reshape(3, 1, 2, 2), torch.zeros(3, dtype=torch.long), 1)
    assert get_proxy("jacob_cov")(HalfSquaredNorm(), batch) == pytest.approx(
        expected_score([1, 1, 1]), rel=1e-12)


def reference_jacob_cov(model: nn.Module, x: torch.Tensor) -> float:
    """Independently: the full Jacobian of the batch output by torch.autograd.functional, summed
    over outputs, then np.corrcoef and np.linalg.eig as in foresight's code."""
    full = torch.autograd.functional.jacobian(model, x)  # (N, classes, N, C, H, W)
    jacobians = full.sum(dim=(0, 1)).reshape(len(x), -1).double().numpy()
    eigenvalues = np.linalg.eig(np.corrcoef(jacobians))[0].real
    return expected_score(eigenvalues)


def test_agrees_with_autograd_functional_jacobian(small_model):
    make, batch = small_model
    model = make(0).train()  # the CNN's BatchNorm couples the samples: the full Jacobian sees it
    assert get_proxy("jacob_cov")(model, batch) == pytest.approx(
        reference_jacob_cov(model, batch.x), rel=1e-5)


class HalfSquaredRelu(nn.Module):
    """f(x) = ½‖relu(x)‖², whose input Jacobian is relu(x): 0 for an all-negative input."""

    def forward(self, x):
        return 0.5 * x.flatten(1).relu().pow(2).sum(1, keepdim=True)


def test_constant_jacobian_is_reported_not_returned_as_nan(small_model):
    _, batch = small_model
    x = batch.x.clone()
    x[0] = -x[0].abs()
    with pytest.raises(UndefinedScore, match="constant"):
        get_proxy("jacob_cov")(HalfSquaredRelu(), Batch(x, batch.y, batch.num_classes))


def test_single_input_is_refused(small_model):
    make, batch = small_model
    with pytest.raises(BenchError, match="at least 2"):
        get_proxy("jacob_cov")(make(0), Batch(batch.x[:1], batch.y[:1], batch.num_classes))
