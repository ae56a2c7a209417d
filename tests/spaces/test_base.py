"""The space contract, checked on every registered space: seeded distinct sampling, canonical JSON
and stable ids, validation that accepts its own samples and rejects malformed architectures."""

import hashlib
import json

import pytest

import spaces.catalog  # noqa: F401  (registers every space)
from spaces.base import SPACES, arch_id, canonical_json, get_space, load_arch
from spaces.errors import BenchError

ALL_SPACES = sorted(SPACES)


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
        get_space("autoformer-xl")
    with pytest.raises(BenchError, match="not valid JSON"):
        load_arch(get_space("pit-t"), '{"base_dim": 16,')
