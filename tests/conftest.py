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


def write_pcd(path: Path, fields: dict, *, encoding: str = "ascii", width: int | None = None, height: int = 1,
              viewpoint: str = "0 0 0 1 0 0 0") -> Path:
    """Write a PCL .pcd file by hand: ``fields`` maps names to (N,) arrays (their numpy type sets SIZE/TYPE)."""
    import lzf
    import numpy as np

    names = list(fields)
    columns = [np.asarray(fields[name]) for name in names]
    count = len(columns[0])
    kinds = {"f": "F", "u": "U", "i": "I"}
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(names)}\nSIZE {' '.join(str(c.dtype.itemsize) for c in columns)}\n"
        f"TYPE {' '.join(kinds[c.dtype.kind] for c in columns)}\nCOUNT {' '.join('1' for _ in columns)}\n"
        f"WIDTH {count // height if width is None else width}\nHEIGHT {height}\nVIEWPOINT {viewpoint}\n"
        f"POINTS {count}\nDATA {encoding}\n"
    )
    if encoding == "ascii":
        rows = zip(*[c.tolist() for c in columns])
        body = "".join(" ".join(str(v) for v in row) + "\n" for row in rows).encode()
    else:
        records = np.empty(count, dtype=[(name, c.dtype.str) for name, c in zip(names, columns)])
        for name, column in zip(names, columns):
            records[name] = column
        if encoding == "binary":
            body = records.tobytes()
        else:  # binary_compressed: column after column, LZF-compressed, behind (compressed, raw) sizes
            raw = b"".join(np.ascontiguousarray(c).tobytes() for c in columns)
            packed = lzf.compress(raw)
            body = np.array([len(packed), len(raw)], dtype="<u4").tobytes() + packed
    path.write_bytes(header.encode() + body)
    return path


@pytest.fixture(scope="session")
def pcd_writer():
    """:func:`write_pcd`, for tests that build their own PCD files."""
    return write_pcd
