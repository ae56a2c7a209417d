"""ZiCo: gradients that are large and consistent across batches predict fast, good training.

Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients", ICLR 2023
(reference code SLDGroup/ZiCo, `ZeroShotProxy/compute_zico.py`). The statistics run over the
gradients of several batches, so one batch is not enough: with one, every standard deviation is 0.
"""

from __future__ import annotations

import torch
from torch import nn

from proxies.base import Batch, Needs, Proxy, register
from proxies.common import cross_entropy, weight_gradients, weights


def layer_zico(gradients: list[torch.Tensor]) -> float:
    """log Σ_θ mean_b|g_θ| / std_b(g_θ) of one layer from its per-batch gradients; 0 if undefined.

    As ZiCo's code does: the standard deviation is the population one (numpy's default), entries
    whose gradient is the same in every batch (std 0, e.g. weights the loss does not reach) are
    left out, and a layer with no entry left contributes nothing instead of log 0. "The same" is
    tested exactly, before any arithmetic could round a zero spread to a tiny one. The statistics
    are accumulated in place, batch by batch, in float64: the largest layers hold tens of millions
    of weights, and a reduction over a stacked batch dimension is several times slower.
    """
    first = gradients[0]
    varying = torch.zeros_like(first, dtype=torch.bool)
    for grad in gradients[1:]:
        varying |= grad != first
    if not varying.any():
        return 0.0
    rows = [grad.to(torch.float64) for grad in gradients]
    mean = sum(rows) / len(rows)
    abs_sum, squared_deviations = torch.zeros_like(mean), torch.zeros_like(mean)
    for row in rows:
        abs_sum += row.abs()
        squared_deviations += (row - mean).square_()
    # mean|g| / std = (Σ|g| / B) / sqrt(Σ(g - mean)² / B) = Σ|g| / sqrt(B · Σ(g - mean)²)
    ratio = abs_sum / (squared_deviations * len(rows)).sqrt_()
    return torch.where(varying, ratio, 0.0).sum().log().item()


@register("zico", batches=2)
class Zico(Proxy):
    """ZiCo, Σ_layers log Σ_θ mean_b|∂L_b/∂θ| / std_b(∂L_b/∂θ) over the Linear and Conv weights θ.

    The batch is split into `batches` = 2 equal mini-batches (the paper uses two batches); L_b is
    the cross-entropy on mini-batch b, so the batch size must be even. Each mini-batch is a separate
    forward in train mode, so BatchNorm uses that mini-batch's statistics, as with ZiCo's loader.
    """

    needs = Needs(labels=True, min_batch=4)
    reference = ("Li et al., ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on "
                 "Gradients, ICLR 2023")

    def batch_problem(self, batch_size: int) -> str | None:
        if self.batches < 2:
            return f"zico needs gradients of at least 2 batches, got batches={self.batches}"
        if batch_size % self.batches or batch_size // self.batches < 2:
            return (f"zico splits the batch into {self.batches} equal mini-batches of at least 2 "
                    f"images, so the batch size must be a multiple of {self.batches} and at least "
                    f"{2 * self.batches}, not {batch_size}")
        return None

    def score(self, model: nn.Module, batch: Batch) -> float:
        params = weights(model)
        per_batch = [
            [g.flatten() for g in weight_gradients(cross_entropy(model, part), params)]
            for part in batch.split(self.batches)
        ]
        return sum(layer_zico(list(layer)) for layer in zip(*per_batch))
