"""Shared fixtures: the real data in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present beside the project's checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def scene0000_dir(shared_data: Path) -> Path:
    folder = shared_data / "scannet" / "scene0000_00"
    if not folder.is_dir():
        pytest.skip(f"ScanNet scene not found at {folder}")
    return folder


def _with_torch_threads(count: int):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def one_torch_thread():
    """Tiny tensors run fastest single-threaded, and other processes may be busy on the same cores."""
    yield from _with_torch_threads(1)


@pytest.fixture
def two_torch_threads():
    yield from _with_torch_threads(2)
