"""Errors by kind: bad input is refused before any scoring (one line, exit code 2, nothing
cached); a genuine failure is cached with its reason and retried on request; a transient one is
never cached."""

import sqlite3

import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.runner import RunConfig, run_benchmark
from proxies.base import PROXIES, Needs, Proxy, register
from tests.bench.conftest import cached_rows


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_refused(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert message in lines[0], lines[0]


@pytest.mark.parametrize("args, message", [
    (["--space", "autoformer-t", "--img-size", 50], "multiple of the patch size"),
    (["--space", "autoformer-t", "--img-size", 7], "multiple of the patch size"),
    (["--space", "autoformer-t", "--img-size", 5], "multiple of the patch size"),
    (["--space", "toy-mlp", "--proxies", "zico", "--batch-size", 3], "multiple of 2"),
    (["--space", "toy-mlp", "--proxies", "ntk", "--batch-size", 1], "at least 2"),
    (["--space", "toy-mlp", "--proxies", "ntkk"], "did you mean ntk"),
    (["--space", "autoprox-t", "--inputs", "real"], "give --data-dir"),
    (["--space", "toy-mlp", "--kernel-dtype", "float16"], "float16"),
])
def test_bad_run_configurations_are_refused_before_anything_is_cached(tmp_path, args, message):
    cache = tmp_path / "c.sqlite"
    result = invoke("run", "--n", 2, "--device", "cpu", "--cache", cache,
                    "--out", tmp_path / "run", *args)
    assert_refused(result, message)
    assert cached_rows(cache) == 0
    assert not (tmp_path / "run").exists()


def test_an_unwritable_run_directory_is_refused_before_scoring(tmp_path):
    cache = tmp_path / "c.sqlite"
    result = invoke("run", "--space", "toy-mlp", "--n", 2, "--proxies", "params", "--cache", cache,
                    "--out", "/proc/x")
    assert_refused(result, "cannot write the run directory /proc/x")
    assert cached_rows(cache) == 0


def toy_run(tmp_path, cache, *args):
    return invoke("run", "--space", "toy-mlp", "--n", 3, "--proxies", "params",
                  "--batch-size", 4, "--device", "cpu", "--cache", cache,
                  "--out", tmp_path / "run", *args)


@pytest.mark.parametrize("content, message", [
    (b"this is not a database, just some bytes" * 100, "not a usable score cache"),
    (None, "is a directory"),
])
def test_a_corrupt_cache_or_a_directory_is_refused_and_left_untouched(tmp_path, content, message):
    cache = tmp_path / "cache.sqlite"
    if content is None:
        cache.mkdir()
    else:
        cache.write_bytes(content)
    assert_refused(toy_run(tmp_path, cache), message)
    if content is not None:
        assert cache.read_bytes() == content


def test_another_programs_database_is_refused_and_left_untouched(tmp_path):
    cache = tmp_path / "foreign.sqlite"
    with sqlite3.connect(cache) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    before = cache.read_bytes()
    assert_refused(toy_run(tmp_path, cache), "holds other tables: customers")
    assert cache.read_bytes() == before


def test_a_cache_path_that_cannot_be_created_is_refused(tmp_path):
    assert_refused(toy_run(tmp_path, "/proc/x/cache.sqlite"), "cannot open cache")


def config(tmp_path, proxies):
    return RunConfig(proxies=proxies, space="toy-mlp", n=29, seed=3, batch_size=4,
                     inputs="gaussian", device="cpu", cache=str(tmp_path / "cache.sqlite"))


def test_cached_failures_are_served_until_retry_failures_recomputes_them(tmp_path, calls):
    first = run_benchmark(config(tmp_path, ("test_width",))).scores
    failed = int(first["error"].notna().sum() - first["error"].fillna("").str.startswith(
        "model does not build").sum())
    assert failed >= 1  # width 7 raises in the counting proxy
    calls.clear()
    run_benchmark(config(tmp_path, ("test_width",)))
    assert calls == []
    run_benchmark(config(tmp_path, ("test_width",)).replace(retry_failures=True))
    assert len(calls) == failed


class OutOfMemoryOnce(Proxy):
    """Runs out of memory on its first call, then scores 1."""

    needs = Needs(gradients=False)
    failed = False

    def score(self, model, batch):
        if not OutOfMemoryOnce.failed:
            OutOfMemoryOnce.failed = True
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 1.0


@pytest.fixture
def out_of_memory_once():
    register("test_oom_once")(OutOfMemoryOnce)
    OutOfMemoryOnce.failed = False
    yield "test_oom_once"
    del PROXIES["test_oom_once"]


def test_out_of_memory_is_reported_for_this_run_only_and_never_cached(tmp_path, out_of_memory_once):
    first = run_benchmark(config(tmp_path, (out_of_memory_once,)).replace(n=2)).scores
    assert "transient: not cached" in first["error"].iloc[0]
    assert first["score"].iloc[1] == 1.0
    again = run_benchmark(config(tmp_path, (out_of_memory_once,)).replace(n=2)).scores
    assert again["error"].isna().all() and (again["score"] == 1.0).all()
