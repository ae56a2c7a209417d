"""Models are built on the target device, the CPU's weights unchanged by it, and the CUDA
reproducibility settings are applied and recorded (the flags are torch's, settable without a GPU;
tests/bench/test_cuda.py runs them on one)."""

import json

import pytest
import torch

from bench.device import CUBLAS_WORKSPACE, device_settings, prepare_device
from bench.runner import build_model, run
from spaces.base import get_space
from tests.proxies.conftest import project_spaces


@pytest.mark.parametrize("space_name", project_spaces())
def test_a_model_built_on_the_cpu_has_the_weights_of_a_cpu_build_moved_there(space_name):
    # Every cached CPU score was computed on `space.build(...).to("cpu")` after manual_seed:
    # building inside `torch.device("cpu")` must draw bit for bit the same tensors.
    space = get_space(space_name)
    size = min(32, space.default_img_size)
    arch = space.sample_many(1, 1)[0]
    torch.manual_seed(17)
    before = space.build(arch, img_size=size).to("cpu").state_dict()
    after = build_model(space, arch, size, 17, "cpu").state_dict()
    assert list(after) == list(before)
    for name, tensor in before.items():
        assert after[name].device.type == "cpu"
        assert torch.equal(after[name], tensor), name


def torch_flags() -> dict:
    """Every process-wide flag `prepare_device` may set."""
    cuda = torch.backends.cuda
    return {"deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32": (cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32),
            "attention": (cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(),
                          cuda.cudnn_sdp_enabled(), cuda.math_sdp_enabled())}


@pytest.fixture
def restored_flags(monkeypatch):
    """Torch's flags as they were before the test, whatever it set."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    saved = torch_flags()
    yield saved
    cuda = torch.backends.cuda
    torch.use_deterministic_algorithms(saved["deterministic"], warn_only=saved["warn_only"])
    torch.backends.cudnn.deterministic = saved["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
    cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved["tf32"]
    for enable, on in zip((cuda.enable_flash_sdp, cuda.enable_mem_efficient_sdp,
                           cuda.enable_cudnn_sdp, cuda.enable_math_sdp), saved["attention"]):
        enable(on)


def test_preparing_the_cpu_changes_no_setting_of_torch(restored_flags):
    prepare_device("cpu")
    assert torch_flags() == restored_flags
    assert device_settings("cpu") == {"deterministic_algorithms": restored_flags["deterministic"],
                                      "deterministic_warn_only": restored_flags["warn_only"]}


def test_preparing_cuda_sets_and_reports_every_reproducibility_setting(restored_flags):
    prepare_device(torch.device("cuda"))
    assert device_settings("cuda") == {
        "deterministic_algorithms": True, "deterministic_warn_only": True,
        "attention_backends": ["math"], "cudnn_deterministic": True, "cudnn_benchmark": False,
        "tf32_matmul": False, "tf32_cudnn": False, "cublas_workspace_config": CUBLAS_WORKSPACE}


def test_config_json_records_the_device_settings(tmp_path):
    out = tmp_path / "run"
    run(proxies=["test_width"], space="toy-mlp", n=3, batch_size=2, inputs="gaussian",
        device="cpu", out=str(out), cache=str(tmp_path / "cache.sqlite"))
    recorded = json.loads((out / "config.json").read_text())["device_settings"]
    assert recorded == device_settings("cpu")
    assert recorded["deterministic_algorithms"] is False  # the CPU is left as it is
