"""Where a run's architectures are scored: in this process (the default), in local worker
processes (`--workers N`) or as Ray tasks (`--executor ray`).

An executor takes jobs (an architecture and the proxies its scores are missing for) and yields
each job with its scores as the job completes. It never touches the cache or the run's files: the
caller alone reads and writes them, so a killed run loses at most the jobs in flight. A job whose
worker dies (killed, out of memory, a lost node) is retried RETRIES times; after that its scores
are transient failures, reported for this run and never cached.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from bench.cache import CachedScore
from spaces.base import Arch
from spaces.errors import BenchError, describe_error

# Times a job is started again after its worker died, before it is reported failed.
RETRIES = 2
# Ray tasks in flight per task slot of the cluster: enough to keep every slot busy while results
# stream back, few enough that a lost driver loses little.
RAY_TASKS_PER_SLOT = 2


@dataclass(frozen=True)
class Job:
    """One architecture and the names of the proxies to compute on it; `index` is the caller's."""

    index: int
    arch: Arch
    proxies: tuple[str, ...]


Scores = list[CachedScore]
# The scoring of one process: (architecture, proxy names) -> one CachedScore per name.
ScoreFunction = Callable[[Arch, tuple[str, ...]], Scores]


def available_cores() -> int:
    """The cores this process may use: OMP_NUM_THREADS where the user set it (as torch itself
    reads it), else its CPU affinity where the OS has one, else every core."""
    requested = os.environ.get("OMP_NUM_THREADS", "")
    if requested.isdigit() and int(requested) > 0:
        return int(requested)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads(workers: int) -> int:
    """torch threads per worker when --threads is not given: the cores shared out, at least 1."""
    return max(1, available_cores() // workers)


def lost(job: Job, reason: str) -> Scores:
    """The job's scores when every attempt lost its worker: transient failures, never cached."""
    error = f"{reason} (transient: not cached, rerun to retry)"
    return [CachedScore(None, 0.0, error, transient=True) for _ in job.proxies]


class Executor:
    """The executor contract: `run(jobs)` yields (job, scores) in completion order; `parallelism`
    is how many jobs run at once; used as a context manager, it releases its workers on exit."""

    parallelism = 1

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Scores]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers (nothing to release by default)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class InProcess(Executor):
    """Each job in this process, one after the other: the default, and what the others equal."""

    def __init__(self, score: ScoreFunction):
        self.score = score

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Scores]]:
        for job in jobs:
            yield job, self.score(job.arch, job.proxies)


@dataclass(eq=False)
class Worker:
    """A spawned worker process, the parent's end of its pipe, and whether it has replied yet."""

    process: Any
    conn: Connection
    replied: bool = False

    @classmethod
    def start(cls, context, setup) -> Worker:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=serve, args=(setup, child_end), daemon=True)
        process.start()
        child_end.close()  # the worker holds the only other end: its death closes the pipe
        return cls(process, parent_end)

    def send(self, job: Job) -> bool:
        """Hand the worker a job; False when the worker is gone."""
        try:
            self.conn.send(job)
            return True
        except OSError:
            return False

    def receive(self) -> tuple | None:
        """The worker's reply, or None when it died before sending one."""
        try:
            reply = self.conn.recv() if self.conn.poll() else None
        except (EOFError, OSError):
            return None
        self.replied = self.replied or reply is not None
        return reply

    def stop(self) -> None:
        self.conn.close()
        self.process.kill()
        self.process.join()


class LocalPool(Executor):
    """`workers` spawned processes (spawn, not fork: safe with torch's threads and CUDA), started
    at the first job and kept until `close`. Each rebuilds the run's scoring once from `setup`,
    a picklable object whose `scorer()` returns a ScoreFunction, and scores one job at a time."""

    def __init__(self, setup, workers: int):
        self.setup, self.parallelism = setup, workers
        self.context = multiprocessing.get_context("spawn")
        self.idle: list[Worker] = []
        self.workers: set[Worker] = set()

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Scores]]:
        queue = deque((job, 0) for job in jobs)  # each job with the deaths of its workers so far
        busy: dict[Worker, tuple[Job, int]] = {}
        while queue or busy:
            while queue and len(busy) < self.parallelism:
                worker = self.worker()
                if worker.send(queue[0][0]):
                    busy[worker] = queue.popleft()
                else:
                    self.discard(worker)  # died while idle: the job goes to another one
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in [w for w in busy if {w.conn, w.process.sentinel} & ready]:
                job, deaths = busy.pop(worker)
                reply = worker.receive()
                if reply is None:
                    code = worker.process.exitcode
                    self.discard(worker)
                    if code and code > 0 and not worker.replied:
                        raise BenchError(
                            f"a worker process failed to start (exit code {code}; its error is "
                            "printed above). From a Python script, run under "
                            "`if __name__ == '__main__':`, as the spawn start method needs")
                    if deaths < RETRIES:
                        queue.appendleft((job, deaths + 1))
                        continue
                    yield job, lost(job, f"worker process died {deaths + 1} times while scoring "
                                         f"this architecture (last exit code {code})")
                    continue
                self.idle.append(worker)
                yield job, unpack(reply)

    def worker(self) -> Worker:
        """An idle worker, or a new one."""
        if self.idle:
            return self.idle.pop()
        worker = Worker.start(self.context, self.setup)
        self.workers.add(worker)
        return worker

    def discard(self, worker: Worker) -> None:
        worker.stop()
        self.workers.discard(worker)

    def close(self) -> None:
        """Stop every worker, busy ones included (after Ctrl-C or an error)."""
        for worker in list(self.workers):
            self.discard(worker)
        self.idle.clear()


def serve(setup, conn: Connection) -> None:
    """A worker process: rebuild the scoring at the first job, then score each job received until
    the parent closes the pipe or dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    score = None
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if score is None:
                score = setup.scorer()
            reply = ("scores", score(job.arch, job.proxies))
        except BenchError as err:
            reply = ("bench", str(err))
        except Exception:
            reply = ("crash", traceback.format_exc())
        try:
            conn.send(reply)
        except OSError:
            return


def unpack(reply: tuple) -> Scores:
    """A worker's scores, or its error raised here: a BenchError as itself, anything else (a bug)
    with the worker's traceback."""
    kind, value = reply
    if kind == "bench":
        raise BenchError(value)
    if kind == "crash":
        raise RuntimeError(f"a worker process failed:\n{value}")
    return value


class RayTasks(Executor):
    """Each job a Ray task: on the cluster at `address`, else on the Ray this process has already
    joined, else on a local Ray started for the run. A task takes one GPU when the run's device
    is cuda, else `threads` CPUs; a task whose worker or node dies is retried by Ray."""

    def __init__(self, setup, address: str | None, threads: int):
        try:
            import ray
        except ImportError:
            raise BenchError("--executor ray needs Ray: pip install 'vit-zero-cost-bench[ray]'") \
                from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
            except Exception as err:
                raise BenchError(f"cannot start or join Ray at {address or 'this machine'}: "
                                 f"{describe_error(err)}") from None
        resources = ray.cluster_resources()
        if setup.device == "cuda" and not resources.get("GPU"):
            self.close()
            raise BenchError("--device cuda: the Ray cluster has no GPU; give --device cpu")
        options = {"num_gpus": 1} if setup.device == "cuda" else {}
        slots = resources.get("GPU", 0) if setup.device == "cuda" else \
            resources.get("CPU", 1) // threads
        self.parallelism = max(1, int(slots))
        self.task = ray.remote(score_task).options(num_cpus=threads, max_retries=RETRIES,
                                                   **options)
        self.setup = ray.put(setup)

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Scores]]:
        ray, waiting = self.ray, deque(jobs)
        pending: dict[Any, Job] = {}
        while waiting or pending:
            while waiting and len(pending) < RAY_TASKS_PER_SLOT * self.parallelism:
                job = waiting.popleft()
                pending[self.task.remote(self.setup, job)] = job
            [ref], _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                scores = ray.get(ref)
            except ray.exceptions.RayTaskError as err:  # raised by the scoring code itself
                if isinstance(err.cause, BenchError):
                    raise BenchError(str(err.cause)) from None
                raise
            except ray.exceptions.RayError as err:  # the worker or node died, every retry
                scores = lost(job, f"Ray task lost after {RETRIES} retries "
                                   f"({type(err).__name__})")
            yield job, scores

    def close(self) -> None:
        """Shut down the Ray this executor started (a Ray joined before is left as it was)."""
        if self.started:
            self.ray.shutdown()


def score_task(setup, job: Job) -> Scores:
    """A Ray task: the job's scores, computed on the node as a local run computes them."""
    return setup.scorer()(job.arch, job.proxies)
