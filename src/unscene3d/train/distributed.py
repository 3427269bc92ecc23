"""Data-parallel training under ``torchrun``: detected from the environment, no code changes needed.

``torchrun --nproc_per_node=K`` sets WORLD_SIZE / RANK / LOCAL_RANK; with WORLD_SIZE > 1 the process
group is started (NCCL on GPUs, Gloo on CPU) and each rank uses ``cuda:LOCAL_RANK`` when GPUs exist.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from unscene3d.model.sparse_backend import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device | None = None) -> DistributedContext:
    """Start the process group when launched by torchrun with more than one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(rank=0, world_size=1, device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    run_device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    return DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(), device=run_device)


def shutdown_distributed(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
        wait_for_idle_gloo_workers()


def wait_for_idle_gloo_workers(timeout: float = 10.0, quiet_polls: int = 3, poll_seconds: float = 0.01) -> None:
    """Return once gloo's worker threads have been asleep for ``quiet_polls`` polls in a row (or ``timeout``).

    A DistributedDataParallel wrapper keeps the gloo group, and its worker threads, alive after
    ``destroy_process_group``. A worker that finished a collective still drops its reference to the work
    afterwards; on a loaded machine that can happen after Python began shutting down, and freeing a tensor
    Python created then needs the interpreter: the thread is cancelled and the process aborts (exit -6, about
    one short torchrun run in 30 beside two busy processes). Sleeping here hands the interpreter to them; a
    thread the scheduler has not run yet shows as runnable and restarts the count. Linux only (elsewhere a
    short sleep).
    """
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        time.sleep(quiet_polls * poll_seconds)
        return
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < quiet_polls and time.monotonic() < deadline:
        time.sleep(poll_seconds)
        quiet = quiet + 1 if all(state == "S" for state in _gloo_worker_states(tasks)) else 0


def _gloo_worker_states(tasks: Path) -> list[str]:
    """The scheduler state letter (R running or runnable, S asleep, ...) of each gloo worker thread."""
    states = []
    for task in tasks.iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended between listing and reading
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("pt_gloo"):
            states.append(stat[stat.rindex(")") + 2])
    return states


@contextmanager
def distributed(device: str | torch.device | None = None) -> Iterator[DistributedContext]:
    """The process group of a training call (:func:`init_distributed`), shut down when the call ends."""
    context = init_distributed(device)
    try:
        yield context
        # Ranks leave together: gloo aborts a process (exit -6) whose peer tears the group down first,
        # about one run in ten for short runs. Not on errors: a rank that failed alone would wait here.
        barrier(context)
    finally:
        shutdown_distributed(context)


def mean_over_ranks(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Average a tensor over all ranks (identity when not distributed)."""
    if not context.enabled:
        return values
    values = values.detach().clone().to(context.device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / context.world_size


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()
