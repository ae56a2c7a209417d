"""The CUDA path: models built on the GPU, reproducible scores, kernels that agree with the CPU's,
GPU time and memory in `bench perf`. Skipped without a GPU; results/perf/gpu_check.sh runs it."""

import copy
import json
import warnings

import pytest
import torch
from rich.console import Console

from bench.device import device_settings
from bench.inputs import make_batch
from bench.perf import GPU_COLUMNS, PerfConfig, measure_perf
from bench.runner import architecture_seed, build_model, evaluate, run
from proxies.base import all_proxy_names, get_proxy, shared_work
from proxies.ntk_kernel import KernelAccumulator, ntk_kernel
from spaces.base import get_space
from tests.proxies.test_ntk_kernel_batched import looped_linear_map, model_and_images

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
# The spaces whose layers differ: relative-position tables, depthwise-conv pooling, BatchNorm
# CNN cells, the tiny embedded ViTs.
SPACES = ("autoformer-t", "pit-t", "nb201", "micro")


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_a_model_built_on_cuda_is_there_whole_and_its_seeded_weights_repeat():
    space = get_space("autoformer-t")
    arch = space.sample_many(1, 0)[0]
    first, second = (build_model(space, arch, 32, 5, CUDA).state_dict() for _ in range(2))
    assert all(tensor.is_cuda for tensor in first.values())
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_building_on_cuda_puts_the_reproducibility_settings_in_force():
    space = get_space("micro")
    build_model(space, space.sample_many(1, 0)[0], 28, 0, CUDA)
    settings = device_settings(CUDA)
    assert settings.pop("cublas_workspace_config") in (":4096:8", ":16:8")
    assert settings == {
        "deterministic_algorithms": True, "deterministic_warn_only": True,
        "attention_backends": ["math"], "cudnn_deterministic": True, "cudnn_benchmark": False,
        "tf32_matmul": False, "tf32_cudnn": False}


@pytest.mark.parametrize("space_name", SPACES)
def test_every_proxy_gives_the_same_cuda_score_twice_bit_for_bit(space_name):
    space = get_space(space_name)
    size = min(32, space.default_img_size)
    batch = make_batch("pink", 8, size, space.in_chans, space.num_classes, 0).to(CUDA)
    arch = space.sample_many(1, 1)[0]
    seed = architecture_seed(0, arch)
    passes = []
    for _ in range(2):
        model = build_model(space, arch, size, seed, CUDA)
        with shared_work():
            passes.append({name: evaluate(get_proxy(name), model, batch, seed)
                           for name in all_proxy_names()})
    for name, first in passes[0].items():
        second = passes[1][name]
        assert (first.score, first.error) == (second.score, second.error), name


@pytest.mark.parametrize("space_name", SPACES)
def test_fast_kernel_on_cuda_equals_the_naive_kernel_and_the_cpu_kernel(space_name):
    model, x = model_and_images(space_name)
    cpu = ntk_kernel(model, x, "fast").kernel
    model, x = model.to(CUDA), x.to(CUDA)
    fast, naive = ntk_kernel(model, x, "fast"), ntk_kernel(model, x, "naive")
    assert fast.method == "fast" and fast.kernel.is_cuda
    assert relative_error(fast.kernel, naive.kernel) <= 1e-10
    assert relative_error(fast.kernel.cpu(), cpu) <= 1e-10


def test_batched_products_on_cuda_equal_the_per_sample_loop(monkeypatch):
    model, x = model_and_images("autoformer-t")
    model, x = model.to(CUDA), x.to(CUDA)
    batched = ntk_kernel(model, x, "fast").kernel
    monkeypatch.setattr(KernelAccumulator, "add_linear_map", looped_linear_map)
    assert relative_error(batched, ntk_kernel(model, x, "fast").kernel) <= 1e-13


def test_no_kernel_proxy_runs_an_op_without_a_deterministic_implementation():
    for space_name in SPACES:
        space = get_space(space_name)
        size = min(32, space.default_img_size)
        model = build_model(space, space.sample_many(1, 0)[0], size, 0, CUDA)
        batch = make_batch("pink", 4, size, space.in_chans, space.num_classes, 0).to(CUDA)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name in ("ntk", "vintk", "vintk_hp"):
                get_proxy(name)(model, batch)
        flagged = [str(w.message) for w in caught if "deterministic" in str(w.message)]
        assert not flagged, (space_name, flagged)


def test_cuda_scores_of_the_same_weights_agree_with_the_cpu_in_float64():
    space = get_space("autoformer-t")
    arch = space.sample_many(1, 2)[0]
    seed = architecture_seed(0, arch)
    cpu_model = build_model(space, arch, 32, seed, "cpu")
    batch = make_batch("pink", 8, 32, space.in_chans, space.num_classes, 0)
    for name in ("ntk", "ntk_trace", "vintk", "synflow"):
        on_cpu = evaluate(get_proxy(name), cpu_model, batch, seed).score
        on_cuda = evaluate(get_proxy(name), copy.deepcopy(cpu_model).to(CUDA), batch.to(CUDA),
                           seed).score
        assert on_cuda == pytest.approx(on_cpu, rel=1e-6), name


def test_perf_on_cuda_reports_gpu_time_and_peak_gpu_memory():
    config = PerfConfig(space="micro", batch_size=8, device="cuda", proxies=("ntk", "params"),
                        repeats=2, naive_repeats=1)
    table, setting = measure_perf(config, Console(quiet=True))
    rows = table.set_index("proxy")
    assert set(GPU_COLUMNS) <= set(table.columns)
    assert (rows["gpu_seconds_median"] > 0).all()
    assert rows.loc["train_step", "gpu_ratio_to_train_step"] == 1.0
    assert rows.loc["ntk", "peak_mem_mb"] > 0 and rows.loc["train_step", "peak_mem_mb"] > 0
    assert setting["memory_method"] == "torch.cuda.max_memory_allocated"
    assert setting["device_settings"]["deterministic_algorithms"] is True


def test_a_cuda_run_records_its_settings_in_config_json(tmp_path):
    out = tmp_path / "run"
    run(proxies=["ntk", "params"], space="micro", n=2, batch_size=4, inputs="pink",
        device="cuda", out=str(out), cache=str(tmp_path / "cache.sqlite"))
    config = json.loads((out / "config.json").read_text())
    assert config["resolved"]["device"] == "cuda"
    assert config["device_settings"]["tf32_matmul"] is False
    assert config["device_settings"]["attention_backends"] == ["math"]
