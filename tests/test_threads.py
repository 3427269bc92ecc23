"""Thread pools sized to the free cores (unscene3d.threads)."""

from __future__ import annotations

import subprocess
import sys

from unscene3d.threads import free_threads


def test_free_threads_by_hand() -> None:
    assert free_threads(cores=2, load=0.0) == 2
    assert free_threads(cores=2, load=0.6) == 1  # 1.4 free cores round to 1
    assert free_threads(cores=2, load=9.0) == 1  # never below one
    assert free_threads(cores=8, load=2.2) == 6


def test_resizing_after_numba_launched_its_threads() -> None:
    # One process running several commands (the API, the tests): numba's pool is launched at the first size, and a
    # later, larger size must neither crash numba's next compilation nor exceed that pool.
    script = """
from unscene3d.threads import use_threads
use_threads(1)  # before numba loads: its pool is launched with one thread
import numpy as np, numba
@numba.njit(parallel=True)
def total(x):
    s = 0.0
    for i in numba.prange(len(x)):
        s += x[i]
    return s
assert total(np.ones(10)) == 10
use_threads(2)
@numba.njit
def again(x):
    return x + 1
assert again(1) == 2 and numba.get_num_threads() == 1
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
