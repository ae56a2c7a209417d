import torch
from torch import nn

from proxies.base import Batch, get_proxy


class PixelTokens(nn.Module):
    """Each pixel a token: (B, C, H, W) -> (B, H*W, C), then one Linear on every token."""

    def __init__(self, in_chans: int, out: int):
        super().__init__()
        self.linear = nn.Linear(in_chans, out)

    def forward(self, x):
        return self.linear(x.flatten(2).transpose(1, 2)).mean(dim=1)


def images(n: int, chans: int, size: int) -> Batch:
    return Batch(torch.randn(n, chans, size, size), torch.zeros(n, dtype=torch.long), 2)


def test_params_counts_trainable_parameters_exactly():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    model[3].bias.requires_grad_(False)
    # conv 3*4*9 + 4, BN 4 + 4 (running stats are buffers), linear 8 (its bias is frozen)
    assert get_proxy("params")(model, images(1, 3, 3)) == 108 + 4 + 8 + 8


def test_flops_of_a_linear_layer_are_two_in_out_per_token_for_one_image():
    model = PixelTokens(3, 7)
    # 5 x 5 = 25 tokens; the batch size (4) must not enter
    assert get_proxy("flops")(model, images(4, 3, 5)) == 2 * 3 * 7 * 25
    assert get_proxy("flops")(model, images(4, 3, 10)) == 2 * 3 * 7 * 100


def test_flops_of_a_vit_include_the_attention_matmuls():
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(img_size=16, patch_size=4, num_classes=5, embed_dim=16, depth=2,
                              num_heads=2, mlp_ratio=2.0)
    tokens, dim, hidden = 17, 16, 32
    patch_embed = 2 * (4 * 4 * 3) * dim * 16
    linears = 2 * tokens * (dim * 3 * dim + dim * dim + 2 * dim * hidden)
    attention = 2 * (2 * tokens * tokens * dim)  # q k^T and attn v, over all heads
    head = 2 * dim * 5
    expected = patch_embed + 2 * (linears + attention) + head
    assert get_proxy("flops")(model, images(2, 3, 16)) == expected
