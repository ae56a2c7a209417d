"""`--executor ray` on a local Ray of two CPUs: exactly the scores of a run in this process, and
a Ray worker killed mid-run loses nothing (Ray retries its task; the driver caches each score
once). Skipped where Ray is not installed (`pip install '.[ray]'`)."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bench.executors import RETRIES, Job, RayTasks
from bench.runner import RunConfig, prepare, run
from tests.bench.conftest import PARALLEL_N as N
from tests.bench.conftest import cached_rows, scores_text
from tests.bench.conftest import parallel_run_options as options

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with two CPUs, shared by the tests of this module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def ray_task_workers() -> list[int]:
    """Ray worker processes running a scoring task now (Ray titles them ray::score_task)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::score_task"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids


def test_a_run_through_ray_gives_exactly_the_scores_of_a_local_run(tmp_path, local_ray):
    run(**options(tmp_path, "local"))
    through_ray = run(**options(tmp_path, "ray", executor="ray"))
    assert scores_text(tmp_path / "ray") == scores_text(tmp_path / "local")
    assert through_ray.info["execution"]["executor"] == "ray"
    assert ray.is_initialized()  # a Ray joined before the run is left running


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc (Linux)")
def test_a_ray_worker_killed_mid_run_loses_nothing(tmp_path, local_ray):
    cache = tmp_path / "killed.sqlite"
    killed: list[int] = []

    def kill_one_task_worker():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            workers = ray_task_workers()
            if workers and cached_rows(cache, live=True) >= 10:
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.005)

    killer = threading.Thread(target=kill_one_task_worker)
    killer.start()
    scores = run(**options(tmp_path, "killed", executor="ray")).scores
    killer.join()
    assert killed, "no Ray worker was killed: the run ended first"
    run(**options(tmp_path, "local"))
    assert scores_text(tmp_path / "killed") == scores_text(tmp_path / "local")
    assert scores["error"].isna().all()
    assert cached_rows(cache) == len(scores) + N  # each score once, and N FLOP counts


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc (Linux)")
def test_a_task_whose_worker_always_dies_is_reported_transient_after_the_retries(tmp_path,
                                                                                 local_ray):
    prepared = prepare(RunConfig(**options(tmp_path, "doomed")))
    stop, killed = threading.Event(), set()

    def kill_every_task_worker():
        while not stop.is_set():
            for pid in set(ray_task_workers()) - killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.001)

    killer = threading.Thread(target=kill_every_task_worker)
    killer.start()
    try:
        with RayTasks(prepared.setup(1), address=None, threads=1) as tasks:
            [(job, scores)] = list(tasks.run([Job(0, prepared.candidates.archs[0], ("params",))]))
    finally:
        stop.set()
        killer.join()
        prepared.cache.close()
    assert len(killed) == 1 + RETRIES
    assert scores[0].transient and scores[0].score is None and "not cached" in scores[0].error
