"""Jacobian covariance: how decorrelated the input Jacobians of a batch's inputs are.

Mellor et al., "Neural Architecture Search without Training", arXiv 2006.04647 v1 (2020), the score
that the ICML version replaced by NASWOT; implemented as Abdelfattah et al.'s foresight `jacob_cov`.
A network whose local linear maps differ from input to input can tell the inputs apart.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from proxies.base import Batch, Needs, Proxy, register
from proxies.common import UndefinedScore


def input_jacobians(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """J (N, D): row i is ∂(Σ_c f_c(x_i))/∂x_i, flattened, from one backward of Σ over the outputs.

    With BatchNorm in train mode the samples interact and row i is the gradient of the whole
    batch's summed output with respect to x_i, as in the public code.
    """
    x = x.detach().requires_grad_(True)
    (jacobian,) = torch.autograd.grad(model(x).sum(), x)
    return jacobian.flatten(1)


def jacobian_covariance_score(jacobians: np.ndarray, k: float) -> float:
    """−Σ_λ [log(λ + k) + 1/(λ + k)] over the eigenvalues λ of the rows' correlation matrix."""
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(jacobians)
    if not np.isfinite(correlation).all():
        raise UndefinedScore("jacob_cov: an input's Jacobian is constant, so its correlation "
                             "with the others is undefined")
    # A correlation matrix is positive semi-definite; clipping round-off negatives at 0 keeps
    # log(λ + k) defined without changing any eigenvalue by more than machine precision.
    eigenvalues = np.clip(np.linalg.eigvalsh(correlation), 0.0, None)
    return float(-np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


@register("jacob_cov", k=1e-5)
class JacobCov(Proxy):
    """Jacobian covariance, −Σ[log(λ+k) + 1/(λ+k)], λ eigenvalues of corr(J), J_i = ∂Σf(x_i)/∂x_i.

    Higher when the inputs' Jacobians are less correlated (eigenvalues away from 0). k = 1e-5.
    Needs at least two inputs. An input whose Jacobian is constant (e.g. all zero) makes the
    correlation undefined; that is raised as UndefinedScore rather than returned as NaN.
    """

    needs = Needs(min_batch=2)
    reference = ("Mellor et al., Neural Architecture Search without Training, "
                 "arXiv 2006.04647v1, 2020")

    def score(self, model: nn.Module, batch: Batch) -> float:
        jacobians = input_jacobians(model, batch.x).detach().cpu().to(torch.float64).numpy()
        return jacobian_covariance_score(jacobians, self.k)
