"""A run killed (SIGKILL, no chance to clean up) at random points and resumed gives exactly the
scores of an uninterrupted run, each (architecture, proxy) once."""

import random
import signal
import subprocess
import sys
import time

import pandas as pd

from tests.bench.conftest import cached_rows

RUN = ["run", "--benchmark", "micro-fmnist", "--n", "40", "--proxies", "params,flops,l2_norm,grad_norm",
       "--batch-size", "8", "--seed", "0", "--device", "cpu"]
ROWS = 40 * 4  # with params and flops in the run, no size count is cached besides


def bench(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from bench.cli import main; main()", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={"OMP_NUM_THREADS": "1", "PATH": ""})


def kill_when_cached(args: list[str], cache, rows: int) -> None:
    """Start the run and SIGKILL it once the cache holds `rows` scores (or when it ends)."""
    process = bench(args)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if cached_rows(cache, live=True) >= rows:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()


def scores_of(out) -> pd.DataFrame:
    table = pd.read_csv(out / "scores.csv")
    return table[["arch_id", "proxy", "score", "error", "note"]]


def test_a_run_killed_at_random_points_resumes_to_the_uninterrupted_scores(tmp_path):
    cache = tmp_path / "killed.sqlite"
    args = [*RUN, "--cache", str(cache), "--out", str(tmp_path / "killed")]
    for rows in sorted(random.Random(0).sample(range(1, ROWS - 10), 3)):
        kill_when_cached(args, cache, rows)
        assert cached_rows(cache) < ROWS  # killed before the end
    finished = bench(args)
    assert finished.wait() == 0, finished.stderr.read().decode()
    clean = bench([*RUN, "--cache", str(tmp_path / "clean.sqlite"), "--out", str(tmp_path / "clean")])
    assert clean.wait() == 0, clean.stderr.read().decode()
    resumed, uninterrupted = scores_of(tmp_path / "killed"), scores_of(tmp_path / "clean")
    assert len(resumed) == ROWS and not resumed.duplicated(["arch_id", "proxy"]).any()
    pd.testing.assert_frame_equal(resumed, uninterrupted)
    assert cached_rows(cache) == ROWS
