"""`bench perf`: the side-by-side table, its peak-memory meter and the target verdicts."""

import pandas as pd
import pytest
import torch
from rich.console import Console

from bench.perf import (
    COLUMNS,
    GPU_COLUMNS,
    NAIVE_NTK,
    TRAIN_STEP,
    Measurement,
    PeakMemory,
    PerfConfig,
    measure,
    measure_perf,
    perf_table,
    target_checks,
    write_perf,
)
from spaces.errors import BenchError


def test_perf_times_train_step_proxies_and_naive_ntk_side_by_side(tmp_path):
    config = PerfConfig(space="toy-mlp", batch_size=4, device="cpu", proxies=("ntk", "params"),
                        repeats=2, naive_repeats=1)
    table, setting = measure_perf(config, Console(quiet=True))
    rows = table.set_index("proxy")
    assert list(table.columns) == COLUMNS
    assert set(rows.index) == {TRAIN_STEP, "ntk", "params", NAIVE_NTK}
    assert rows.loc[TRAIN_STEP, "ratio_to_train_step"] == 1.0
    assert (rows.loc["ntk", "method"], rows.loc[NAIVE_NTK, "method"]) == ("fast", "naive")
    assert rows.loc["ntk", "repeats"] == 2 and rows.loc[NAIVE_NTK, "repeats"] == 1
    assert (rows["seconds_min"] <= rows["seconds_median"]).all()
    assert (rows["seconds_median"] <= rows["seconds_max"]).all()
    assert rows["cpu_seconds_median"].notna().all()
    assert setting["arch"] == {"width": 28} and setting["config"]["space"] == "toy-mlp"
    write_perf(table, setting, tmp_path)
    written = pd.read_csv(tmp_path / "perf.csv", keep_default_na=False)
    assert list(written["proxy"]) == list(table["proxy"])
    assert (tmp_path / "perf.json").exists()


def test_peak_memory_sees_a_tensor_allocated_and_freed_inside_the_call():
    meter = PeakMemory(torch.device("cpu"))
    if meter.method == "unavailable":
        pytest.skip("no /proc/self/status peak resident set on this system")
    result = Measurement("allocate")
    measure(lambda: torch.ones(16 * 2**20).sum(), result, meter, torch.device("cpu"))  # 64 MiB
    assert result.peak_mb[0] == pytest.approx(64, rel=0.15)


def test_target_checks_compare_ntk_with_train_step_naive_ntk_and_vintk():
    table = perf_table([
        Measurement(TRAIN_STEP, "AdamW", [10.0], [10.0], [100.0]),
        Measurement("ntk", "fast", [20.0], [40.0], [200.0]),
        Measurement(NAIVE_NTK, "naive", [200.0], [160.0], [900.0]),
        Measurement("vintk", "fast", [60.0], [80.0], [400.0]),
    ])
    verdicts = {(c["target"], c["basis"]): (c["measured"], c["met"]) for c in target_checks(table)}
    assert verdicts == {
        ("ntk peak memory <= 1.5 x training step", "memory"): (2.0, False),
        ("ntk time <= 3 x training step", "wall"): (2.0, True),
        ("naive NTK time >= 5 x ntk", "wall"): (10.0, True),
        ("vintk time <= 2.5 x ntk", "wall"): (3.0, False),
        ("ntk time <= 3 x training step", "cpu"): (4.0, False),
        ("naive NTK time >= 5 x ntk", "cpu"): (4.0, False),
        ("vintk time <= 2.5 x ntk", "cpu"): (2.0, True),
    }


def test_perf_rejects_a_batch_too_small_for_a_kernel():
    with pytest.raises(BenchError, match="batch size"):
        PerfConfig(batch_size=1)


def test_a_training_step_that_adds_no_memory_leaves_the_memory_target_unmeasured():
    table = perf_table([Measurement(TRAIN_STEP, "AdamW", [1.0], [1.0], [0.0]),
                        Measurement("ntk", "fast", [1.0], [1.0], [0.0])])
    memory = next(c for c in target_checks(table) if c["basis"] == "memory")
    assert memory["met"] is None


def test_gpu_columns_and_targets_appear_only_where_calls_were_timed_on_a_gpu():
    on_cpu = perf_table([Measurement(TRAIN_STEP, "AdamW", [1.0], [1.0], [10.0]),
                         Measurement("ntk", "fast", [2.0], [2.0], [10.0])])
    on_gpu = perf_table([Measurement(TRAIN_STEP, "AdamW", [1.0], [1.0], [10.0], "", [0.5]),
                         Measurement("ntk", "fast", [2.0], [2.0], [10.0], "", [2.0, 1.0, 1.5])])
    assert list(on_cpu.columns) == COLUMNS
    assert list(on_gpu.columns) == COLUMNS + GPU_COLUMNS
    assert on_gpu.set_index("proxy").loc["ntk", "gpu_ratio_to_train_step"] == 3.0  # median 1.5
    gpu_checks = {c["target"]: c["measured"] for c in target_checks(on_gpu) if c["basis"] == "gpu"}
    assert gpu_checks["ntk time <= 3 x training step"] == 3.0
    assert not [c for c in target_checks(on_cpu) if c["basis"] == "gpu"]
