"""How many threads the heavy commands compute with: the cores free for this process, not every core.

Thread pools sized to ``os.cpu_count()`` are the fastest on an idle machine and the slowest on a busy one:
with two other processes busy on 2 cores, a self-training step at 2 torch threads took 2-3x as long as at 1
thread, because the threads of a parallel region wait for the slowest one, which waits for a core
(docs/benchmarks.md, "Threads under load"). So a command takes the cores this process may run on
(``os.sched_getaffinity``, which honours ``taskset`` and cgroup cpusets) less the 1-minute load average of
the rest of the machine, at least 1, and sizes every pool to that: torch's intra-op pool, OpenMP and the
BLAS libraries (through threadpoolctl for those already loaded, through the environment for those not
yet loaded, which read it once at load), and numba's pool. Idle OpenMP threads sleep at once instead
of spinning (``OMP_WAIT_POLICY=PASSIVE``): a spinning thread takes a core that another process, or this
process's own next thread, was waiting for. Variables the user set already are left as they are.

Results do not depend on the thread count the segment model trains with (tests/test_threads.py), so a
run resumed under another load still repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import logging
import math
import os
import sys

from unscene3d.errors import InputError

log = logging.getLogger(__name__)

# Read by OpenMP, OpenBLAS, MKL and numba when their libraries load.
_POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


def machine_load() -> float:
    """The 1-minute load average (runnable processes), 0 where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def free_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for one process: ``cores`` (default: :func:`usable_cores`) less the ``load`` (default:
    :func:`machine_load`) rounded to the nearest whole process, between 1 and ``cores``. The load average
    counts every runnable process of the machine, so on a container it may exceed this process's cores."""
    cores = usable_cores() if cores is None else cores
    load = machine_load() if load is None else load
    return max(1, min(cores, math.floor(cores - load + 0.5)))


def process_threads() -> int:
    """The threads this process computes with: the count :func:`use_threads` (or the user, through
    ``OMP_NUM_THREADS``) set, else :func:`free_threads`. Worker processes split it between them."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return free_threads()


def use_threads(threads: int | None = None) -> int:
    """Size every thread pool of this process to ``threads`` (None: :func:`free_threads`); returns it.

    Call it before the heavy imports where possible: OpenMP and the BLAS libraries size their pools from
    the environment when they load; pools already loaded are resized in place.

    Raises:
        InputError: ``threads`` below 1.
    """
    if threads is not None and threads < 1:
        raise InputError(None, f"--threads must be at least 1, got {threads}")
    count = free_threads() if threads is None else threads
    explicit = threads is not None
    for name in _POOL_VARIABLES:
        # Once numba is loaded its pool is sized; a changed NUMBA_NUM_THREADS then makes its next config reload
        # fail ("cannot set NUMBA_NUM_THREADS ... once the threads have been launched"): it is resized below.
        if name == "NUMBA_NUM_THREADS" and "numba" in sys.modules:
            continue
        if explicit or name not in os.environ:
            os.environ[name] = str(count)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _resize_loaded_pools(count)
    log.debug("%d thread(s) (%d usable cores, load %.2f)", count, usable_cores(), machine_load())
    return count


def _resize_loaded_pools(count: int) -> None:
    """Resize the pools of libraries this process has already loaded (a later import reads the environment)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(count)
