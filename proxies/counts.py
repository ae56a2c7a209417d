"""The trivial baselines every proxy is compared with: parameter count and forward FLOPs.

Both are strong on some ViT spaces and anti-correlated with accuracy on others (docs/proxies.md,
size baselines), so a proxy that does not beat them has not shown anything.
"""

from __future__ import annotations

from torch import nn

from proxies.base import Batch, Needs, Proxy, register
from spaces.base import forward_flops


@register("params")
class Params(Proxy):
    """Trainable parameter count, Σ numel(p) over the parameters with requires_grad."""

    needs = Needs(gradients=False, weights=False, train_mode=False)
    reference = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021 (baseline)"

    def score(self, model: nn.Module, batch: Batch) -> float:
        return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


@register("flops")
class Flops(Proxy):
    """Forward FLOPs of one image at the batch's resolution (torch.utils.flop_counter, MAC = 2)."""

    needs = Needs(gradients=False, weights=False, train_mode=False)
    reference = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021 (baseline)"

    def score(self, model: nn.Module, batch: Batch) -> float:
        # One image at the batch's resolution: the count is per image and reduced-resolution runs
        # count the model they evaluate.
        return float(forward_flops(model, batch.x[:1]))
