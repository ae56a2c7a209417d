"""What scoring sets on a CUDA device so that the same run gives the same scores, and what
config.json records of it.

On CUDA (`prepare_device`):
- deterministic algorithms (`torch.use_deterministic_algorithms`) with `warn_only`: an op with no
  deterministic CUDA implementation warns instead of failing the proxy, and
  results/perf/gpu_check.py lists the warnings of every proxy. None is expected among the ops of
  this project's spaces and proxies (AdaptiveAvgPool2d to 1 x 1 is a mean; the 1-D NLL loss and
  the backward of indexing the relative-position tables have deterministic kernels), but this
  has not been run on a GPU yet;
- attention by the math backend of `scaled_dot_product_attention` only: under `warn_only` the
  memory-efficient and flash backends keep their non-deterministic backward and merely warn;
- cuDNN deterministic, benchmark mode off (its autotuner picks convolution algorithms by timing,
  so two runs could pick different ones);
- TF32 off for matrix products and convolutions (its 10-bit mantissa puts float32 results at
  1e-3; proxies/ntk_kernel.py turns it off for kernels in any case);
- a fixed cuBLAS workspace (CUBLAS_WORKSPACE_CONFIG, which deterministic cuBLAS needs; it takes
  effect only when set before the process's first cuBLAS call, so results/perf/gpu_check.sh
  exports it).
These are process-wide settings, left in place. The CPU is left as it is: its kernels give the
same result for a fixed thread count, and the deterministic mode would only add the cost of
filling every new tensor first.
"""

from __future__ import annotations

import os

import torch

CUBLAS_WORKSPACE = ":4096:8"
ATTENTION_BACKENDS = {"flash": "flash_sdp", "mem_efficient": "mem_efficient_sdp",
                      "cudnn": "cudnn_sdp", "math": "math_sdp"}


def prepare_device(device: torch.device | str) -> None:
    """Apply the reproducibility settings of the module docstring where `device` is CUDA."""
    if torch.device(device).type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    for backend, flag in ATTENTION_BACKENDS.items():
        getattr(torch.backends.cuda, f"enable_{flag}")(backend == "math")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def device_settings(device: torch.device | str) -> dict:
    """The settings in force, read back from torch (not what was asked): config.json's
    `device_settings`. The attention, cuDNN, TF32 and cuBLAS entries only on CUDA."""
    settings = {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled()}
    if torch.device(device).type == "cuda":
        settings.update({
            "attention_backends": [backend for backend, flag in ATTENTION_BACKENDS.items()
                                   if getattr(torch.backends.cuda, f"{flag}_enabled")()],
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        })
    return settings
