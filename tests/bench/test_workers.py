"""Local worker processes (`--workers N`): the same scores as one process, the parent alone
writing the cache, nothing lost or duplicated when the parent or a worker is killed; the thread
choice, the plain progress lines and the plan printed before scoring."""

import dataclasses
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from bench.executors import Job, LocalPool, default_threads
from bench.progress import PLAIN_STEPS, progress_bar
from bench.runner import (
    SMALL_NETWORK_PARAMS,
    RunConfig,
    cached_seconds,
    plan_scores,
    plan_summary,
    prepare,
    run,
)
from spaces.base import get_space
from spaces.errors import BenchError
from tests.bench.conftest import PARALLEL_N as N
from tests.bench.conftest import PARALLEL_PROXIES, cached_rows, scores_text
from tests.bench.conftest import parallel_run_options as options

RUN = ["run", "--benchmark", "micro-fmnist", "--n", str(N), "--proxies", ",".join(PARALLEL_PROXIES),
       "--batch-size", "8", "--seed", "0", "--device", "cpu", "--threads", "1"]

needs_proc = pytest.mark.skipif(not list(Path("/proc/self/task").glob("*/children")),
                                reason="finding worker processes reads /proc (Linux)")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> str:
    """The run's scores computed in this process, one thread, on a fresh cache."""
    where = tmp_path_factory.mktemp("one")
    scores = run(**options(where, "one")).scores
    assert len(scores) == N * len(PARALLEL_PROXIES) and scores["error"].isna().all()
    return scores_text(where / "one")


def cache_content(path) -> set[tuple]:
    """Every cached row: key, score, seconds and when it was written."""
    with sqlite3.connect(path, timeout=10) as db:
        return set(db.execute("SELECT key, score, seconds, created FROM scores"))


def spawned_workers(parent: int) -> list[int]:
    """The worker processes `parent` has spawned (multiprocessing's spawn_main), by pid."""
    pids = []
    for children in Path(f"/proc/{parent}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
            except OSError:
                pass  # it ended meanwhile
    return pids


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not reaped, counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_workers_write_the_scores_of_one_process_bit_for_bit(tmp_path, one_process):
    two = run(**options(tmp_path, "two", workers=2))
    assert scores_text(tmp_path / "two") == one_process
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["threads"] == 1 and config["execution"]["parallel_jobs"] == 2
    assert cached_rows(tmp_path / "two.sqlite") == len(two.scores) + N  # and N FLOP counts


@needs_proc
def test_a_worker_killed_mid_run_is_replaced_and_its_architecture_scored_once(tmp_path,
                                                                             one_process):
    cache = tmp_path / "killed.sqlite"
    killed: list[int] = []

    def kill_one_worker_once_scores_arrive():
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            workers = spawned_workers(os.getpid())
            if workers and cached_rows(cache, live=True) >= 10:
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.005)

    killer = threading.Thread(target=kill_one_worker_once_scores_arrive)
    killer.start()
    scores = run(**options(tmp_path, "killed", workers=2)).scores
    killer.join()
    assert killed, "no worker was killed: the run ended first"
    assert scores_text(tmp_path / "killed") == one_process
    assert cached_rows(cache) == len(scores) + N


@needs_proc
def test_a_job_whose_worker_always_dies_is_reported_transient_after_the_retries(tmp_path):
    prepared = prepare(RunConfig(**options(tmp_path, "doomed")))
    stop = threading.Event()
    killed: set[int] = set()

    def kill_every_worker():
        while not stop.is_set():
            for pid in spawned_workers(os.getpid()):
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            time.sleep(0.001)

    killer = threading.Thread(target=kill_every_worker)
    killer.start()
    try:
        with LocalPool(prepared.setup(1), workers=1) as pool:
            [(job, scores)] = list(pool.run([Job(0, prepared.candidates.archs[0], ("params",))]))
    finally:
        stop.set()
        killer.join()
        prepared.cache.close()
    assert len(killed) >= 3  # the first attempt and two retries (and any killed while idle)
    assert scores[0].transient and scores[0].score is None
    assert "died 3 times" in scores[0].error and "not cached" in scores[0].error


@needs_proc
def test_parent_killed_mid_run_loses_no_cached_score_its_workers_exit_and_a_rerun_completes(
        tmp_path, one_process):
    cache = tmp_path / "resumed.sqlite"
    args = [*RUN, "--workers", "2", "--cache", str(cache), "--out", str(tmp_path / "killed")]
    total = N * len(PARALLEL_PROXIES)  # the N FLOP counts come after the scores
    parent = subprocess.Popen([sys.executable, "-c", "from bench.cli import main; main()", *args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, workers = time.monotonic() + 120, []
    while parent.poll() is None and time.monotonic() < deadline:
        workers = spawned_workers(parent.pid) or workers
        if cached_rows(cache, live=True) >= total // 3:
            parent.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    parent.wait()
    before = cache_content(cache)
    assert workers and 0 < len(before) < total
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "workers outlived their parent"
    run(**options(tmp_path, "resumed"))  # in this process: the scores are the same (see above)
    assert scores_text(tmp_path / "resumed") == one_process
    after = cache_content(cache)
    assert len(after) == total + N and before <= after  # what was cached is served, not redone


def test_a_script_without_the_main_guard_is_told_so_instead_of_retrying(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text("from bench.runner import run\n"
                      f"run(space='micro', n=2, proxies=['params'], device='cpu', workers=2, "
                      f"cache={str(tmp_path / 'c.sqlite')!r})\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert "a worker process failed to start (exit code 1" in result.stderr
    assert "if __name__ == '__main__':" in result.stderr


def test_small_networks_get_one_thread_and_large_ones_the_configured_count(tmp_path):
    prepared = prepare(RunConfig(**options(tmp_path, "threads")))
    prepared.cache.close()
    micro_scorer = prepared.scorer(threads=3)
    vit_scorer = dataclasses.replace(micro_scorer, space=get_space("autoprox-t"), img_size=64)
    micro = prepared.candidates.archs[0]
    vit = vit_scorer.space.sample_many(1, 0)[0]
    assert vit_scorer.space.count_params(vit, 64) >= SMALL_NETWORK_PARAMS
    assert micro_scorer.space.count_params(micro, 28) < SMALL_NETWORK_PARAMS
    assert vit_scorer.threads_for(vit) == 3 and micro_scorer.threads_for(micro) == 1


def test_scoring_sets_the_chosen_threads_and_restores_the_callers(tmp_path, monkeypatch):
    prepared = prepare(RunConfig(**options(tmp_path, "seen")))
    prepared.cache.close()
    scorer = prepared.scorer(threads=2)
    seen = []
    monkeypatch.setattr(scorer.proxies["params"], "score",
                        lambda model, batch: seen.append(torch.get_num_threads()) or 1.0)
    monkeypatch.setattr(scorer, "threads_for", lambda arch: 2)
    before = torch.get_num_threads()
    scorer(prepared.candidates.archs[0], ("params",))
    assert seen == [2] and torch.get_num_threads() == before


def test_execution_options_leave_the_run_digest_and_scores_key_unchanged():
    base = RunConfig(space="micro", n=3)
    assert base.digest() == base.replace(workers=2, threads=1).digest()
    assert base.digest() != base.replace(seed=1).digest()
    assert default_threads(1) >= default_threads(2) >= 1


def test_default_threads_honour_omp_num_threads(monkeypatch):
    # results/reference/run.sh runs two jobs side by side with OMP_NUM_THREADS=1 each.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads(1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "6")
    assert default_threads(1) == 6 and default_threads(2) == 3 and default_threads(12) == 1


@pytest.mark.parametrize("changes, message", [
    ({"workers": 0}, "--workers must be a positive integer"),
    ({"threads": 0}, "--threads must be a positive integer"),
    ({"executor": "dask"}, "--executor must be one of"),
    ({"address": "10.0.0.1:6379"}, "give --executor ray too"),
    ({"executor": "ray", "workers": 2}, "--workers is for --executor local"),
])
def test_bad_execution_options_are_refused(changes, message):
    with pytest.raises(BenchError, match=message):
        RunConfig(space="micro", **changes)


def test_plain_progress_prints_a_line_every_five_percent_with_rate_and_time_left():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=False, width=200)
    with progress_bar("[bold]scoring", console=console) as progress:
        task = progress.add_task("archs", total=200, completed=50)
        for _ in range(150):
            progress.update(task, advance=1)
    lines = stream.getvalue().splitlines()
    # 50 cached of 200 start at the 5th step of 20; every further step prints once.
    assert len(lines) == PLAIN_STEPS - 50 * PLAIN_STEPS // 200
    assert lines[0].startswith("scoring: 60/200 archs (30%), ")
    assert lines[-1].startswith("scoring: 200/200 archs (100%), ")
    assert all("archs/min, elapsed " in line and ", left " in line for line in lines)


def test_the_plan_counts_cached_pairs_and_estimates_from_the_same_settings_timings(tmp_path):
    first = run(**options(tmp_path, "first", n=6, proxies=["params", "grad_norm"]))
    config = RunConfig(**options(tmp_path, "first", proxies=["params", "grad_norm"]))
    prepared = prepare(config)
    try:
        timings = {proxy.name: sorted(cached_seconds(prepared, proxy)) for proxy in prepared.proxies}
        other = prepare(config.replace(batch_size=4))
        assert all(not cached_seconds(other, proxy) for proxy in other.proxies)
        other.cache.close()
        line = plan_summary(prepared, plan_scores(prepared, prepared.candidates.archs), 1)
    finally:
        prepared.cache.close()
    for name, group in first.scores.groupby("proxy"):
        assert timings[name] == sorted(group["seconds"])
    assert line.startswith(f"cache: 12 of {2 * N} (architecture, proxy) pairs scored; "
                           f"{2 * N - 12} to compute on {N - 6} architectures, about ")
    assert "params " in line and "grad_norm " in line and "no timing" not in line
