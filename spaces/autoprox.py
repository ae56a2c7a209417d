"""The `autoprox-t` space: the AutoFormer-T subnets behind the Auto-Prox ground truth
(Wei et al., "Auto-Prox", AAAI 2024; code: GitHub lliai/Auto-Prox-AAAI24).

The choices are AutoFormer-T's, but the model is Auto-Prox's own `AutoFormerSub`
(pycls/models/auto/autoformer_subnet.py and common.py there), which differs from Cream's subnet.
Reading of that code:
- attention `MultiheadAttention(in_channels=hidden_dim, out_channels=hidden_dim, num_heads)`: q/k/v
  width = hidden_dim, so the head dimension is hidden_dim / heads (timm's Attention default);
  qkv with bias, scale (hidden_dim / heads)^-0.5, no relative position embedding;
- conv patch embedding (16 px), class token and learned absolute positions (truncated normal),
  pre-norm `TransformerLayer`s with MLP hidden int(hidden_dim x ratio) and GELU;
- LayerNorm eps 1e-6 (cfg.TRANSFORMER.LN_EPS);
- `forward_features` applies the final LayerNorm to every token and then returns
  `mean(x[:, 1:])`: the norm comes before pooling, and the class token is left out of the mean;
- the head is Linear(hidden_dim, num_classes) with num_classes from the data set (CIFAR-100: 100,
  Flowers: 102, Chaoyang: 4). The "*_kd" runs add a distillation token and head; this space builds
  the plain model (the "*_base" one).
Auto-Prox names the width `hidden_dim`; here it is `embed_dim`, as in the AutoFormer spaces.
"""

from __future__ import annotations

from timm.layers import Attention

from spaces.autoformer import AutoFormerTiny
from spaces.base import register_space
from spaces.params import attention_params


@register_space
class AutoProxSpace(AutoFormerTiny):
    name = "autoprox-t"
    description = ("Auto-Prox's AutoFormer-T subnets (AAAI 2024): head dim embed/heads, no relative "
                   "position, head on the mean patch token; CIFAR-100 classes by default")
    attn_layer = Attention
    global_pool = "avg"
    norm_eps = 1e-6

    def __init__(self, num_classes: int = 100):
        super().__init__(num_classes)

    def attn_layer_params(self, embed_dim: int, num_heads: int) -> int:
        """timm's Attention at head dimension embed_dim / heads: q/k/v width embed_dim."""
        return attention_params(embed_dim, embed_dim)
