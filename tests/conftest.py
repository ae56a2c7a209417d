"""Shared test settings: one thread (CI has two cores) and the location of ../shared/data."""

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The public benchmark files beside the checkout; tests that need them skip without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public benchmark files not found at {SHARED_DATA}")
    return SHARED_DATA
