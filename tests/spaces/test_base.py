"""The space contract, checked on every registered space: seeded distinct sampling, canonical JSON
and stable ids, validation that accepts its own samples and rejects malformed architectures (for any
damaged input, a canonical architecture or one BenchError), and image sizes that build when accepted
and are one line when refused."""

import hashlib
import json
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spaces.catalog  # noqa: F401  (registers every space)
from spaces import pit
from spaces.autoformer import AutoFormerSpace
from spaces.base import SPACES, SearchSpace, arch_id, canonical_json, get_space, load_arch
from spaces.errors import BenchError
from spaces.nb201 import NB201Space
from spaces.pit import PiTSpace

ALL_SPACES = sorted(SPACES)
# The project's own spaces (tests elsewhere register toy ones).
CATALOG_SPACES = [name for name in ALL_SPACES if SPACES[name].__module__.startswith("spaces.")]


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": [1, 2.5], "a": 1}) == '{"a":1,"b":[1,2.5]}'


def test_arch_id_is_a_short_sha256_of_the_canonical_json_whatever_the_key_order():
    expected = hashlib.sha256(b'{"a":1,"b":[1,2.5]}').hexdigest()[:12]
    assert arch_id({"b": [1, 2.5], "a": 1}) == arch_id({"a": 1, "b": [1, 2.5]}) == expected


def test_expected_spaces_are_registered():
    assert {"autoformer-t", "autoformer-s", "autoformer-b", "autoprox-t",
            "pit-t", "pit-xs", "pit-s"} <= set(SPACES)


@pytest.mark.parametrize("name", ALL_SPACES)
def test_sampling_is_seeded_and_distinct(name):
    space = get_space(name)
    first, again, other = (space.sample_many(8, seed) for seed in (0, 0, 1))
    assert first == again
    assert first != other
    assert len({canonical_json(arch) for arch in first}) == 8


@pytest.mark.parametrize("name", ALL_SPACES)
def test_samples_are_canonical_and_survive_a_json_round_trip(name):
    space = get_space(name)
    for arch in space.sample_many(8, seed=3):
        assert space.validate(arch) == arch
        text = canonical_json(arch)
        assert canonical_json(load_arch(space, text)) == text
        assert arch_id(json.loads(text)) == arch_id(arch)


@pytest.mark.parametrize("name", ALL_SPACES)
@pytest.mark.parametrize("bad", ["empty", "extra key", "list"])
def test_validate_rejects_malformed_architectures_with_one_line(name, bad):
    space = get_space(name)
    arch = {"empty": {}, "extra key": dict(space.sample_many(1, 0)[0], colour="red"),
            "list": [1, 2, 3]}[bad]
    with pytest.raises(BenchError) as err:
        space.validate(arch)
    assert "\n" not in str(err.value) and str(err.value)


def test_unknown_space_and_bad_json_are_user_errors():
    with pytest.raises(BenchError, match="known: .*autoformer-t"):
        get_space("resnet-50")
    with pytest.raises(BenchError, match="not valid JSON"):
        load_arch(get_space("pit-t"), '{"base_dim": 16,')


def test_a_misspelled_space_name_suggests_the_close_ones():
    with pytest.raises(BenchError) as err:
        get_space("autoformr-t")
    assert str(err.value).startswith("unknown space 'autoformr-t'; did you mean autoformer-t")
    assert "micro" not in str(err.value)


def test_json_nested_too_deeply_is_a_user_error():
    with pytest.raises(BenchError, match="nested too deeply"):
        load_arch(get_space("nb201"), "[" * 100_000)


# Image sizes: what check_img_size accepts builds and runs; what it refuses is one line ----------

def extreme_architectures(space) -> list[dict]:
    """The smallest and the largest architecture of the space (every choice at its min / max)."""
    if isinstance(space, AutoFormerSpace):
        return [{"embed_dim": pick(space.embed_dims), "depth": pick(space.depths),
                 "mlp_ratio": [pick(space.mlp_ratios)] * pick(space.depths),
                 "num_heads": [pick(space.heads)] * pick(space.depths)} for pick in (min, max)]
    if isinstance(space, PiTSpace):
        return [{"base_dim": pick(space.base_dims), "mlp_ratio": pick(pit.MLP_RATIOS),
                 "depth": [pick(options) for options in pit.STAGE_DEPTHS],
                 "num_heads": [pick(space.heads)] * 3} for pick in (min, max)]
    return [{"ops": ["none"] * 6}, {"ops": ["nor_conv_3x3"] * 6}]


# Per space: sizes check_img_size accepts (its smallest among them) and sizes it refuses.
IMG_SIZES = {
    "autoformer": ([16, 48], [0, -16, 5, 7, 15, 50, 17.0, True]),
    "autoprox": ([16, 48], [0, 8, 50, 100]),
    "pit": ([16, 24, 40], [0, 8, 15, 20, 50, 32.0]),
    "micro": ([7, 10, 28], [0, -7, 5, 6, 7.5]),
    "nb201": ([4, 8, 12], [0, -4, 1, 2, 3, 6, 10, 50]),
}


def img_sizes(name: str) -> tuple[list, list]:
    return IMG_SIZES[next(family for family in IMG_SIZES if name.startswith(family))]


@pytest.mark.parametrize("name", CATALOG_SPACES)
def test_every_accepted_img_size_builds_and_runs_the_smallest_and_largest_architecture(name):
    space = get_space(name)
    accepted, _ = img_sizes(name)
    for arch in extreme_architectures(space):
        # Large models run on the meta device: every shape is checked, no arithmetic is done.
        device = "cpu" if space.count_params(arch) < 2_000_000 else "meta"
        for size in accepted:
            space.check_img_size(size)
            with torch.device(device), torch.no_grad():
                logits = space.build(arch, img_size=size).eval()(
                    torch.zeros(1, space.in_chans, size, size))
            assert logits.shape == (1, space.num_classes), (arch, size)


@pytest.mark.parametrize("name", CATALOG_SPACES)
def test_a_refused_img_size_is_one_line_saying_what_the_space_accepts(name):
    space = get_space(name)
    for size in img_sizes(name)[1]:
        with pytest.raises(BenchError) as err:
            space.check_img_size(size)
        message = str(err.value)
        assert message.startswith(f"{name}: img_size {size!r} is not accepted; it must be ")
        assert "\n" not in message


def test_the_default_img_size_check_accepts_positive_integers_only():
    class AnySize(NB201Space):
        check_img_size = SearchSpace.check_img_size

    AnySize().check_img_size(3)
    for size in (0, -1, 2.0, False):
        with pytest.raises(BenchError, match="a positive integer"):
            AnySize().check_img_size(size)


# Hypothesis: anything given to validate or load_arch is an architecture or a BenchError ---------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 300) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=5),
    max_leaves=12)


@st.composite
def damaged(draw, value, rate: float | None = None):
    """`value` with each of its parts changed with probability `rate` (drawn once for the whole
    value, zero included, so that undamaged architectures are drawn too)."""
    if rate is None:
        rate = draw(st.sampled_from([0.0, 0.03, 0.1, 0.3]))
    if draw(st.floats(0, 1)) < rate:
        return draw(changed(value))
    if isinstance(value, dict):
        return {key: draw(damaged(child, rate)) for key, child in value.items()}
    if isinstance(value, list):
        return [draw(damaged(child, rate)) for child in value]
    return value


@st.composite
def changed(draw, value):
    """One change of `value`: any JSON value instead; a number as a float, a bool, a string or
    one more; a list one item shorter or longer; a dict with a key dropped or added."""
    options = [draw(JSON_VALUES)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        options += [float(value), True, str(value), value + 1]
    if isinstance(value, list) and value:
        options += [value[:-1], value + value[-1:]]
    if isinstance(value, dict) and value:
        dropped = draw(st.sampled_from(sorted(value)))
        options += [{k: v for k, v in value.items() if k != dropped},
                    {**value, draw(st.text(max_size=8)): draw(JSON_VALUES)}]
    return draw(st.sampled_from(options))


def assert_canonical(space, arch) -> None:
    """A validated architecture is its own canonical form and survives a JSON round trip."""
    assert space.validate(arch) == arch
    assert load_arch(space, canonical_json(arch)) == arch


@pytest.mark.parametrize("name", CATALOG_SPACES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validate_of_a_damaged_architecture_is_canonical_or_a_bench_error(name, data):
    space = get_space(name)
    arch = data.draw(damaged(space.sample(random.Random(data.draw(st.integers(0, 99))))))
    try:
        validated = space.validate(arch)
    except BenchError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert_canonical(space, validated)
    if name in ("micro", "nb201"):  # small enough to build in a property test
        size = {"micro": 7, "nb201": 4}[name]
        with torch.no_grad():
            logits = space.build(validated, img_size=size).eval()(
                torch.zeros(1, space.in_chans, size, size))
        assert logits.shape == (1, space.num_classes)


@pytest.mark.parametrize("name", CATALOG_SPACES)
@settings(max_examples=30, deadline=None)
@given(text=st.one_of(st.text(max_size=40), JSON_VALUES.map(json.dumps)))
def test_load_arch_of_any_text_is_an_architecture_or_a_bench_error(name, text):
    space = get_space(name)
    try:
        arch = load_arch(space, text)
    except BenchError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert_canonical(space, arch)
