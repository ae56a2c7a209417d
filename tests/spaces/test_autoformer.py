"""AutoFormer spaces: exact parameter counts, Cream's relative position attention, reduced resolution."""

import math
import random

import pytest
import torch

from spaces.autoformer import (
    MAX_RELATIVE_POSITION,
    RelativePosition2D,
    RelativePositionAttention,
)
from spaces.base import canonical_json, get_space
from spaces.errors import BenchError

AUTOFORMER_SPACES = ["autoformer-t", "autoformer-s", "autoformer-b"]

# The example of docs/spaces.md, counted by AutoFormer's own code.
REFERENCE_ARCH = {
    "embed_dim": 192,
    "depth": 14,
    "num_heads": [3, 4, 3, 3, 4, 4, 3, 4, 4, 3, 4, 3, 4, 4],
    "mlp_ratio": [4, 3.5, 3.5, 3.5, 4, 3.5, 4, 4, 3.5, 4, 3.5, 3.5, 3.5, 3.5],
}


def hand_count(arch: dict, num_classes: int = 1000, grid: int = 14) -> int:
    """AutoFormer's parameters, layer by layer, as Cream's get_sampled_params_numel adds them."""
    e = arch["embed_dim"]
    total = (3 * 16 * 16 + 1) * e  # patch embedding conv
    total += e + (grid * grid + 1) * e  # class token, absolute positions
    for heads, ratio in zip(arch["num_heads"], arch["mlp_ratio"]):
        width, hidden = 64 * heads, int(ratio * e)
        total += 2 * 2 * e  # two LayerNorms
        total += (e + 1) * 3 * width + (width + 1) * e  # qkv, proj
        total += 2 * 2 * (2 * 14 + 2) * 64  # k and v relative tables, vertical and horizontal
        total += (e + 1) * hidden + (hidden + 1) * e  # MLP
    return total + 2 * e + (e + 1) * num_classes  # final LayerNorm, head


def smallest_arch(space) -> dict:
    depth = min(space.depths)
    return {"embed_dim": min(space.embed_dims), "depth": depth,
            "mlp_ratio": [min(space.mlp_ratios)] * depth, "num_heads": [min(space.heads)] * depth}


def test_reference_example_has_6776776_parameters():
    assert get_space("autoformer-t").count_params(REFERENCE_ARCH) == 6_776_776
    assert hand_count(REFERENCE_ARCH) == 6_776_776


# Networks of OoD-ViT-NAS's architecture_infors/1k_Vit_Architecture_from_AutoFM_{tiny,small,base}.json
# (GitHub vovantuan1999a/OoD-ViT-NAS, commit af1e221), with the parameter counts those files state:
# the published numbers of other code, so a count that is only self-consistent cannot pass.
PUBLISHED = [  # (space, embed_dim, mlp_ratio, num_heads, params)
    ("autoformer-t", 216, [4, 3.5, 3.5, 3.5, 3.5, 4, 4, 3.5, 4, 3.5, 4, 3.5],
     [3, 4, 3, 4, 3, 3, 3, 4, 3, 3, 3, 4], 6_915_532),
    ("autoformer-t", 192, [4, 3.5, 4, 3.5, 3.5, 4, 3.5, 3.5, 4, 4, 4, 3.5, 4],
     [3, 4, 3, 3, 4, 3, 3, 4, 4, 4, 4, 4, 3], 6_385_768),
    ("autoformer-s", 448, [3.5, 3, 3.5, 4, 3.5, 3.5, 3.5, 3.5, 3.5, 4, 3, 4, 3],
     [6, 5, 5, 7, 6, 7, 7, 7, 5, 6, 5, 7, 5], 28_262_984),
    ("autoformer-s", 384, [3.5, 4, 3, 3.5, 3.5, 3.5, 4, 4, 3, 4, 3.5, 3.5, 4],
     [6, 5, 7, 5, 5, 7, 6, 7, 7, 7, 5, 7, 6], 22_645_480),
    ("autoformer-s", 320, [4, 4, 4, 3.5, 3.5, 3, 4, 3.5, 3.5, 4, 3, 3.5],
     [5, 5, 5, 5, 7, 7, 6, 6, 5, 5, 7, 5], 15_252_616),
    ("autoformer-b", 624, [3.5, 3, 3.5, 4, 3.5, 3.5, 3.5, 3.5, 3.5, 4, 3, 4, 3, 3.5, 3],
     [9, 10, 9, 10, 9, 9, 10, 10, 9, 10, 10, 10, 9, 10, 10], 64_959_352),
    ("autoformer-b", 576, [4, 4, 4, 3, 3, 3, 4, 3, 4, 4, 3, 3.5, 3, 3.5, 3, 3],
     [9, 9, 9, 9, 10, 9, 9, 9, 10, 9, 10, 9, 9, 9, 10, 10], 59_839_912),
    ("autoformer-b", 528, [3.5, 4, 3.5, 3, 4, 4, 3, 3.5, 4, 3, 3.5, 4, 3, 4, 3.5],
     [9, 9, 10, 10, 10, 10, 9, 10, 10, 10, 9, 9, 9, 10, 9], 50_417_968),
]


@pytest.mark.parametrize("name, embed_dim, mlp_ratio, num_heads, params", PUBLISHED)
def test_parameter_count_equals_ood_vit_nas_published_count(name, embed_dim, mlp_ratio,
                                                            num_heads, params):
    arch = {"embed_dim": embed_dim, "depth": len(mlp_ratio), "mlp_ratio": mlp_ratio,
            "num_heads": num_heads}
    assert get_space(name).count_params(arch) == params


@pytest.mark.parametrize("name", AUTOFORMER_SPACES)
def test_parameter_count_matches_hand_count(name):
    space = get_space(name)
    for arch in space.sample_many(3, seed=7):
        assert space.count_params(arch) == hand_count(arch)


def test_count_params_uses_native_resolution_and_position_table_follows_grid():
    space = get_space("autoformer-t")
    arch = space.sample(random.Random(1))
    at_32 = sum(p.numel() for p in space.build(arch, img_size=32).parameters())
    assert at_32 == hand_count(arch, grid=2)  # only the absolute positions shrink
    assert space.count_params(arch) == hand_count(arch, grid=14)


def test_relative_tables_hold_7680_parameters_per_layer():
    attn = RelativePositionAttention(192, 3, qkv_bias=True)
    tables = sum(p.numel() for name, p in attn.named_parameters() if name.startswith("rel_pos"))
    assert tables == 7_680
    assert attn.qkv.out_features == 3 * 64 * 3 and attn.proj.in_features == 64 * 3


@pytest.mark.parametrize("name", AUTOFORMER_SPACES)
def test_forward_at_reduced_resolution_gives_logits(name):
    space = get_space(name)
    model = space.build(smallest_arch(space), img_size=32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1000)


def test_relative_embedding_clips_at_14_and_gives_class_token_row_zero():
    torch.manual_seed(0)
    rel = RelativePosition2D(head_dim=4, max_distance=MAX_RELATIVE_POSITION)
    side = 17  # offsets up to 16, beyond the clip
    emb = rel(side * side + 1)
    v, h = rel.vertical, rel.horizontal
    assert torch.equal(emb[0], (v[0] + h[0]).expand(side * side + 1, 4))
    assert torch.equal(emb[:, 0], (v[0] + h[0]).expand(side * side + 1, 4))
    # patch (0, 0) is token 1; patch (r, c) is token 1 + r * side + c
    assert torch.equal(emb[1, 1 + 3 * side + 16], v[3 + 15] + h[14 + 15])
    assert torch.equal(emb[1 + 16 * side, 1], v[-14 + 15] + h[0 + 15])
    assert torch.equal(emb[1, 1 + 16 * side], emb[1, 1 + 14 * side])


def naive_relative_attention(attn: RelativePositionAttention, x: torch.Tensor) -> torch.Tensor:
    """Cream's attention written out token by token, with the table index from patch coordinates."""
    batch, tokens, _ = x.shape
    side, heads, dim = math.isqrt(tokens - 1), attn.num_heads, attn.head_dim
    q, k, v = attn.qkv(x).reshape(batch, tokens, 3, heads, dim).unbind(2)

    def row(offset):
        return max(-14, min(14, offset)) + 15

    def rel(table, i, j):
        if i == 0 or j == 0:
            return table.vertical[0] + table.horizontal[0]
        (ri, ci), (rj, cj) = divmod(i - 1, side), divmod(j - 1, side)
        return table.vertical[row(rj - ri)] + table.horizontal[row(cj - ci)]

    out = torch.zeros(batch, tokens, heads, dim, dtype=x.dtype)
    for b in range(batch):
        for n in range(heads):
            for i in range(tokens):
                logits = torch.stack([
                    (q[b, i, n] @ (k[b, j, n] + rel(attn.rel_pos_k, i, j))) * dim ** -0.5
                    for j in range(tokens)
                ])
                weights = logits.softmax(0)
                out[b, i, n] = sum(weights[j] * (v[b, j, n] + rel(attn.rel_pos_v, i, j))
                                   for j in range(tokens))
    return attn.proj(out.reshape(batch, tokens, heads * dim))


def test_relative_position_attention_matches_token_by_token_computation():
    torch.manual_seed(0)
    attn = RelativePositionAttention(16, 2, qkv_bias=True).double()
    x = torch.randn(2, 1 + 3 * 3, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(attn(x), naive_relative_attention(attn, x), atol=1e-12)


def test_flops_match_hand_count_of_matrix_products():
    """FlopCounterMode counts 2 FLOPs per multiply-accumulate of convs and matrix products."""
    space = get_space("autoformer-t")
    arch = space.sample(random.Random(3))
    e, tokens = arch["embed_dim"], 1 + 2 * 2
    macs = 4 * 768 * e + e * 1000  # patch conv, head
    for heads, ratio in zip(arch["num_heads"], arch["mlp_ratio"]):
        width, hidden = 64 * heads, int(ratio * e)
        macs += tokens * (e * 3 * width + width * e + 2 * e * hidden)
        macs += 4 * heads * tokens * tokens * 64  # q k^T, q r_k^T, attn v, attn r_v
    assert space.count_flops(arch, img_size=32) == 2 * macs


def test_validate_canonicalises_numbers():
    space = get_space("autoformer-t")
    same = dict(REFERENCE_ARCH, mlp_ratio=[float(r) for r in REFERENCE_ARCH["mlp_ratio"]])
    assert canonical_json(space.validate(REFERENCE_ARCH)) == canonical_json(space.validate(same))
    assert all(isinstance(r, float) for r in space.validate(REFERENCE_ARCH)["mlp_ratio"])


@pytest.mark.parametrize("change, message", [
    ({"embed_dim": 200}, "embed_dim = 200 is not one of [192, 216, 240]"),
    ({"depth": 13}, "mlp_ratio must be a list of 13 values"),
    ({"num_heads": [3] * 13 + [5]}, "num_heads[13] = 5 is not one of [3, 4]"),
    ({"mlp_ratio": [4.0] * 13 + [True]}, "mlp_ratio[13] = True"),
    ({"hidden_dim": 192}, "unknown ['hidden_dim']"),
])
def test_validate_names_the_wrong_field(change, message):
    with pytest.raises(BenchError, match="autoformer-t") as err:
        get_space("autoformer-t").validate(dict(REFERENCE_ARCH, **change))
    assert message in str(err.value)


@pytest.mark.parametrize("img_size", [8, 40, -16])
def test_build_rejects_sizes_that_are_not_whole_patches(img_size):
    with pytest.raises(BenchError, match="multiple of the patch size 16"):
        get_space("autoformer-t").build(REFERENCE_ARCH, img_size=img_size)
