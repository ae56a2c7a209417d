"""MeCo: how far each layer's channels are from being linearly redundant, for one input.

Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue of
Correlation", NeurIPS 2023 (reference code HamsterMimi/MeCo, `foresight/pruners/measures/meco.py`).

Our reading of the reference code, and where we depart from it:
- Features. The code takes `output[0]` of a hooked module, i.e. the first image, reshapes it to
  (its first dimension, everything else) and correlates the rows. For a conv map [C, H, W] that
  is the C × C channel correlation with the H·W positions as observations, which is what the
  paper describes. For a ViT token tensor [N, C] the same reshape would correlate tokens over
  channels; we take channels (the last dimension of a Linear's output) with the N tokens as
  observations, so that the quantity is the paper's channel correlation on both kinds of network.
  The C × C matrix has rank below C whenever C ≥ N, so on ViTs many layers add exactly 0; the
  variant `meco_tokens` keeps the reference code's literal N × N token correlation for comparison.
- Layers. The code hooks every module, containers and identities included, so one feature map is
  counted several times (a block's output, its last layer's output, dropout's copy of it; a
  BatchNorm's output, whose correlation equals its conv's). We take each Linear and Conv layer's
  output once. A Linear output with no token or spatial dimension (the classifier) has one
  observation per channel and no correlation; the reference code turns its NaNs into 0, so it
  adds 0, and so it does here.
- One input. The network runs on the batch's first image alone, in train mode (as the reference),
  so no statistic depends on other samples. (One version of the reference code draws a fresh
  Gaussian 64 x 64 image instead; we use the run's seeded input, whatever its kind.)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from proxies.base import Batch, Needs, Proxy, register
from proxies.common import record_calls, weight_layers


def feature_rows(layer: nn.Module, output: torch.Tensor, token_rows: bool = False) -> np.ndarray:
    """One image's features as (variables, observations), float64: channels by default.

    Conv outputs are (1, C, *spatial); Linear outputs are (1, *tokens, C), channels last. With
    `token_rows` a Linear's tokens become the variables, the reference code's literal reshape.
    """
    sample = output[0].detach().to(torch.float64)
    if isinstance(layer, nn.Linear) and not token_rows:
        sample = sample.movedim(-1, 0)
    return sample.reshape(len(sample), -1).cpu().numpy()


def min_correlation_eigenvalue(features: np.ndarray) -> float:
    """The smallest eigenvalue of the correlation matrix of the rows of `features` (C, samples).

    Two degenerate cases have the exact answer 0, returned without numerical noise: a constant
    row (its correlations are undefined, NaN in np.corrcoef; the reference code sets them to 0,
    which leaves a zero row and hence an eigenvalue 0), and at least as many rows as observations
    (the centred features then have rank below C). Round-off negatives of this positive
    semi-definite matrix are clipped at 0. A single row has the 1 × 1 correlation [[1]].
    """
    rows, observations = features.shape
    if rows >= observations or (np.ptp(features, axis=1) == 0).any():
        return 0.0
    correlation = np.atleast_2d(np.corrcoef(features))
    return max(float(np.linalg.eigvalsh(correlation)[0]), 0.0)


@register("meco", token_rows=False)
class Meco(Proxy):
    """MeCo, Σ_layers λ_min(channel correlation of the layer's output) for one input image.

    Layers are the Linear and Conv layers; a ViT token tensor [N, C] gives a C × C correlation over
    the N tokens, a conv map [C, H, W] one over the H·W positions. A layer with more channels than
    observations or with a constant channel adds exactly 0 (see `min_correlation_eigenvalue`); on
    a ViT at low resolution that is most layers, since MLP widths exceed the token count. Widening
    layers (qkv, fc1) add 0 up to round-off at any resolution: their C outputs span at most their
    input width.
    """

    needs = Needs(gradients=False)
    reference = ("Jiang et al., MeCo: Zero-Shot NAS with One Data and Single Forward Pass via "
                 "Minimum Eigenvalue of Correlation, NeurIPS 2023")

    def score(self, model: nn.Module, batch: Batch) -> float:
        with torch.no_grad(), record_calls(weight_layers(model)) as calls:
            model(batch.x[:1])
            return sum(
                min_correlation_eigenvalue(feature_rows(call.module, call.output, self.token_rows))
                for call in calls
            )


@register("meco_tokens", token_rows=True)
class MecoTokens(Meco):
    """MeCo on token rows, Σ_layers λ_min(N × N token correlation over the channels), one image.

    What the reference code's reshape computes on a [N, C] token tensor; conv maps are read as in
    `meco`. A layer adds 0 when its N tokens outnumber its C output channels (exactly) or its input
    width (up to round-off: the N outputs then span fewer than N dimensions).
    """
