"""SynFlow, the synaptic flow of the network with |W| everywhere, and the pieces DSS shares with it.

Tanaka et al. make every parameter positive and feed one all-ones image, so that R = Σ f(1) sums
the products of |W| along every input-output path and ∂R/∂W ⊙ W is the flow through W; the score
needs no data and no labels. That reading needs a network whose nonlinearities act as fixed gates
on positive paths (ReLU on positive inputs is the identity; BatchNorm in eval mode is affine). A
ViT breaks it in two places, which we handle on purpose:

- Normalisation is neutralised: every BatchNorm and LayerNorm keeps only its affine map
  x ↦ |γ| x + |β|. The original evaluates BatchNorm in eval mode with its initial (identity)
  running statistics, which is that affine map up to its ε. An active LayerNorm divides each token
  by its own spread, so R would no longer sum path products.
- Attention probabilities are held fixed (no gradient through the softmax), as ReLU's gate is: the
  flow runs through the value and output projections, weighted by the attention they see, and the
  query and key weights, which only set the gate, get none. Without normalisation the logits grow
  with the square of the activations, and the exact gradient through the softmax overflows
  float64 (inf · 0 = NaN in the saturated softmax) on the largest network of every AutoFormer,
  AutoProx and PiT space at 32 px; where it stays finite it can exceed the flow itself by a
  factor e^490 (smallest AutoProx-T), so the score would measure the softmax's sensitivity.
  Where the softmax is saturated the two agree (its exact gradient is then ~e^-Δ ≈ 0).
- Float64, and the score is always log Σ |W ⊙ ∂R/∂W|. R grows like the product of the layers' row
  sums of |W|: up to e^222 ≈ 1e96 over the extreme networks of our spaces (largest PiT-S; e^186
  for the largest AutoFormer-B, at 32 and at 224 px alike), beyond float32 (e^88) and inside
  float64 (e^709). The log makes scores comparable across spaces and, being monotone, changes no
  ranking.

`synflow_ln` is SynFlow as the public ViT code computes it, registered beside `synflow` so that
both can be reported. Foresight's implementation (Abdelfattah et al.), whose measure framework
TF-TAS and Auto-Prox reuse for their ViTs, replaces every parameter by its absolute value (and puts
the signs back afterwards, which our copy of the model makes unnecessary), converts the network to
float64, feeds one all-ones image of the batch's shape, back-propagates R = Σ f(1) and sums
|W ⊙ ∂R/∂W| over every Conv and Linear weight. It runs the network as written: LayerNorm
normalises (with |γ| and |β|), the softmax and GELU pass their exact gradients, and BatchNorm is
removed (its forward becomes the identity; NAS-Bench-201 networks are rebuilt without it). The DSS
of TF-TAS and of Auto-Prox does the same in float32. The repository of ViT-Info-Bench holds no
SynFlow code: its own proxy is a formula of the architecture, and its published synflow scores
come without their code. So `synflow_ln` differs from `synflow` in three places:

- LayerNorm is active. R is then no sum of path products any more (a normalised token has
  negative entries, so R can be negative), but it stays of order one: over the largest network of
  autoformer-b, autoprox-t and pit-s at 32, 64 and 224 px, |R| ≤ 28 and the score ≤ e^12, far
  inside float64, where `synflow` reaches e^222. The log is kept so that the two variants read
  alike; the score is positive and the log monotone, so no ranking changes.
- The gradient runs through the softmax, so the query and key weights receive flow.
- BatchNorm is removed rather than reduced to |γ| x + |β| (the same map at initialisation, γ = 1,
  β = 0). Our ViT spaces have no BatchNorm; NB201 does.

Both run in eval mode; the public code keeps the mode it is given (train mode for NAS-Bench-201),
which computes the same here: our spaces build without dropout, and BatchNorm is gone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import LayerNorm2d
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.overrides import TorchFunctionMode

from proxies.base import Batch, Needs, Proxy, register
from proxies.common import UndefinedScore, replace_modules, weight_gradients, weights


class AffineOnly(nn.Module):
    """A normalisation layer without its normalisation: x ↦ γ x + β along its channel dimension."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.weight, self.bias = norm.weight, norm.bias  # the same Parameters; None if not affine
        self.channel_dim = 1 if isinstance(norm, (_BatchNorm, LayerNorm2d)) else -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def along_channels(p: torch.Tensor) -> torch.Tensor:
            return p if self.channel_dim == -1 else p.view(-1, *[1] * (x.ndim - 2))

        if self.weight is not None:
            x = x * along_channels(self.weight)
        if self.bias is not None:
            x = x + along_channels(self.bias)
        return x


def strip_normalization(model: nn.Module, types: tuple[type, ...]) -> int:
    """Replace each normalisation layer of `types` by its affine map, in place; returns how many."""
    return replace_modules(model, types, AffineOnly)


class FixedAttention(TorchFunctionMode):
    """Within this mode softmax and scaled-dot-product attention pass no gradient to their logits:
    attention probabilities are constant gates, whichever attention class computes them."""

    SOFTMAX = (torch.softmax, torch.Tensor.softmax, F.softmax)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.SOFTMAX:
            return func(args[0].detach(), *args[1:], **kwargs)
        if func is F.scaled_dot_product_attention:
            return self.fixed_attention(*args, **kwargs)
        return func(*args, **kwargs)

    @staticmethod
    def fixed_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                        enable_gqa=False):
        if attn_mask is not None or is_causal or dropout_p or enable_gqa:
            raise NotImplementedError("fixed attention supports unmasked, dropout-free attention")
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        probs = torch.softmax(q.detach() @ k.detach().transpose(-2, -1) * scale, dim=-1)
        return probs @ v


def synaptic_flow(model: nn.Module, batch: Batch) -> torch.Tensor:
    """R = Σ f(1) once every parameter of `model` is replaced by |θ| (in place), on one all-ones
    image of the batch's shape, dtype and device."""
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    return model(batch.x.new_ones((1, *batch.x.shape[1:]))).sum()


def log_synaptic_saliency(model: nn.Module, batch: Batch) -> float:
    """log Σ |W ⊙ ∂R/∂W| over the weights of `model`, R the synaptic flow (θ → |θ| in place), on
    the network as it runs: callers first replace what the flow must not see."""
    ws = weights(model)
    grads = weight_gradients(synaptic_flow(model, batch), ws)
    total = sum((w * g).abs().sum() for w, g in zip(ws, grads)).item()
    if not 0 < total < math.inf:
        raise UndefinedScore(f"synaptic flow is {total}; its log is undefined")
    return math.log(total)


@register("synflow")
class SynFlow(Proxy):
    """SynFlow, log Σ |W ⊙ ∂R/∂W|, R = Σ f(1) with θ → |θ|, norms affine-only, softmax fixed."""

    needs = Needs(float64=True, mutates=True, train_mode=False)
    reference = (
        "Tanaka et al., Pruning neural networks without any data by iteratively conserving "
        "synaptic flow, NeurIPS 2020"
    )

    def score(self, model: nn.Module, batch: Batch) -> float:
        strip_normalization(model, (_BatchNorm, nn.LayerNorm))
        with FixedAttention():
            return log_synaptic_saliency(model, batch)


@register("synflow_ln")
class SynFlowAsPublished(Proxy):
    """SynFlow as the public ViT code runs it: log Σ |W ⊙ ∂R/∂W|, R = Σ f(1) with θ → |θ|,
    LayerNorm active, gradient through the softmax, BatchNorm removed."""

    needs = SynFlow.needs
    reference = SynFlow.reference

    def score(self, model: nn.Module, batch: Batch) -> float:
        replace_modules(model, (_BatchNorm,), lambda _: nn.Identity())
        return log_synaptic_saliency(model, batch)
