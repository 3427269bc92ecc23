"""The training loop shared by pretraining and self-training: resume, AMP, DDP, log.csv and checkpoints.

A user builds its model and optimizer, hands them to a :class:`TrainLoop`, restores a checkpoint when it
resumes (:meth:`TrainLoop.restore`) and runs a step function with a :class:`LoopPlan`. The step function
``step_fn(step, model) -> StepOutput`` makes the step's batch, whose randomness must be a function of the
step (and rank) alone, runs the forward pass under :meth:`TrainLoop.autocast` and returns the loss; the
loop does the rest: the learning rate of the step (again a function of the step), back-propagation
through the AMP grad scaler, metrics averaged over ranks and a ``log.csv`` row.

Progress and checkpoints go by the clock as well as by steps, since a step's time varies 10-fold with the
load of the machine: a progress line (rate and ETA over the last minute of steps) every ``log_every``
steps or ``progress_seconds`` seconds, whichever comes first, and while one step runs longer than that, a
line every ``progress_seconds`` saying how long it has run (a loaded machine can take a minute a step); a
checkpoint (weights, optimizer, scaler and torch RNG state) every ``checkpoint_every`` steps or ``checkpoint_minutes`` minutes of training, whichever
comes first, at the last step, and when the process is asked to stop (Ctrl-C / SIGINT, or SIGTERM from a
scheduler): the step in progress finishes, its checkpoint is written, then ``KeyboardInterrupt`` is raised
(a second Ctrl-C stops at once). Nothing else carries over from one step to the next, so a run resumed
from a checkpoint repeats an uninterrupted one exactly (on CPU), whichever step it stopped at.

Layout of the plan's folder::

    FOLDER/log.csv          one row per step (columns: LoopPlan.columns); on resume, rows past the
                            checkpoint are dropped and redone
    FOLDER/checkpoints/...  see unscene3d.model.checkpoint
    FOLDER/checkpoint       link to the latest checkpoint
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from unscene3d.model.checkpoint import Checkpoint, load_model_state, save_checkpoint
from unscene3d.progress import MovingRate, format_duration
from unscene3d.train.csvlog import append_log, prepare_log
from unscene3d.train.distributed import DistributedContext, barrier, mean_over_ranks

log = logging.getLogger(__name__)

LOG_FILE = "log.csv"


@dataclass
class StepOutput:
    """What a step function returns."""

    loss: torch.Tensor  # this rank's loss, back-propagated by the loop
    metrics: dict[str, Any]  # this rank's scalars (floats or 0-d tensors), averaged over ranks; "loss" is required
    sizes: dict[str, int] = field(default_factory=dict)  # per-step counts, logged as rank 0 measured them


@dataclass(frozen=True)
class LoopPlan:
    """The steps of one call and what the loop writes around them.

    ``columns`` maps each ``log.csv`` column to the format of its value (``"d"``: an integer, truncated
    when averaged); a column names a metric or size of :class:`StepOutput`, or ``step`` (1-based),
    ``lr``, ``step_seconds`` or ``elapsed_seconds``. ``progress`` is a ``str.format`` template over the
    same names and ``total``, logged every ``log_every`` steps or ``progress_seconds`` seconds (whichever
    comes first) before the rate and ETA. A checkpoint is written every ``checkpoint_every`` steps or
    ``checkpoint_minutes`` minutes, whichever comes first.
    """

    folder: Path  # log.csv and the checkpoints
    total_steps: int  # the schedule's length (a call may stop earlier)
    learning_rate: Callable[[int], float]  # of the 0-based step
    columns: dict[str, str]
    progress: str
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int
    checkpoint_state: dict[str, Any]  # written into every checkpoint's state.json (configs, scans)
    checkpoint_minutes: float = 2.0
    progress_seconds: float = 15.0


@dataclass
class LoopResult:
    last_step: int
    losses: list[float]  # the loss of each step of this call, averaged over ranks
    checkpoint: Path | None  # the newest checkpoint (the resumed one when no step ran; rank 0 only)


class TrainLoop:
    """One model and optimizer trained on ``context``'s device: AMP when ``amp`` and the device is a
    GPU; under torchrun, DistributedDataParallel (``find_unused_parameters`` for models whose steps may
    leave a part without gradient; ``sync_batchnorm`` converts batch norms on GPUs)."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        context: DistributedContext,
        *,
        amp: bool,
        sync_batchnorm: bool = False,
        find_unused_parameters: bool = False,
    ) -> None:
        self.context = context
        # On the device before any optimizer state is loaded, so that state lands there too.
        self.model = model.to(context.device)
        self.optimizer = optimizer
        self.use_amp = amp and context.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.sync_batchnorm = sync_batchnorm
        self.find_unused_parameters = find_unused_parameters
        self.start_step = 0
        self.checkpoint: Path | None = None

    def autocast(self) -> torch.autocast:
        """The mixed-precision context for a step's forward pass (a no-op without AMP)."""
        return torch.autocast(device_type=self.context.device.type, dtype=torch.float16, enabled=self.use_amp)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint`` (loaded with its optimizer): weights, optimizer, scaler, RNG, step."""
        load_model_state(self.model, checkpoint.model, checkpoint.folder)
        optimizer = checkpoint.optimizer or {}
        self.optimizer.load_state_dict(optimizer_from_tensors(optimizer, checkpoint.state["optimizer"]))
        if self.use_amp and checkpoint.state.get("grad_scaler"):
            self.scaler.load_state_dict(checkpoint.state["grad_scaler"])
        if "rng.torch" in optimizer:
            torch.set_rng_state(optimizer["rng.torch"])
        self.start_step = checkpoint.step
        self.checkpoint = checkpoint.folder

    def run(
        self, step_fn: Callable[[int, torch.nn.Module], StepOutput], plan: LoopPlan, max_steps: int | None = None
    ) -> LoopResult:
        """Train from the start (or restored) step to ``plan.total_steps``, or for ``max_steps`` steps of
        this call (the schedule is unchanged: an interrupted run)."""
        context, start = self.context, self.start_step
        end = plan.total_steps if max_steps is None else min(plan.total_steps, start + max_steps)
        model = self._parallel()
        if context.is_main:
            plan.folder.mkdir(parents=True, exist_ok=True)
            prepare_log(plan.folder / LOG_FILE, list(plan.columns), start)
        losses: list[float] = []
        saved = self.checkpoint
        started = last_save = last_line = time.perf_counter()
        rate = MovingRate(now=started)
        model.train()
        heartbeat = _Heartbeat(plan, rate, end)
        beating = context.is_main and plan.progress_seconds > 0
        with _stop_requests() as stop_requested, _running(heartbeat if beating else None):
            for step in range(start, end):
                step_started = time.perf_counter()
                heartbeat.step_started(step, step_started)
                lr = plan.learning_rate(step)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.optimizer.zero_grad(set_to_none=True)
                output = step_fn(step, model)
                self.scaler.scale(output.loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                now = time.perf_counter()
                # The clock and a stop request decide together with the metrics, so that every rank saves (and
                # stops) after the same step: a flag raised on any rank averages to more than 0.
                flags = [now - last_save >= plan.checkpoint_minutes * 60, stop_requested()]
                mine = torch.tensor([float(value) for value in output.metrics.values()] + [float(f) for f in flags])
                averaged = mean_over_ranks(mine, context).tolist()
                metrics = dict(zip(output.metrics, averaged))
                time_to_save, stopping = (value > 0 for value in averaged[len(output.metrics):])
                losses.append(metrics["loss"])
                rate.update(step + 1 - start, now)
                if context.is_main:
                    values = {**metrics, **output.sizes, "step": step + 1, "total": plan.total_steps, "lr": lr,
                              "step_seconds": now - step_started, "elapsed_seconds": now - started}
                    append_log(plan.folder / LOG_FILE, [_cell(values[name], spec) for name, spec in plan.columns.items()])
                    if (step + 1 - start == 1 or step + 1 == end or (step + 1) % plan.log_every == 0
                            or stopping or now - last_line >= plan.progress_seconds):
                        self._progress(plan, values, rate, end - step - 1)
                        last_line = heartbeat.last_line = now
                if (step + 1) % plan.checkpoint_every == 0 or step + 1 == end or time_to_save or stopping:
                    if context.is_main:
                        saved = self._save(plan, step + 1)
                    barrier(context)
                    last_save = time.perf_counter()
                if stopping:
                    if context.is_main:
                        log.warning("stopped after step %d of %d: checkpoint %s", step + 1, plan.total_steps, saved)
                    raise KeyboardInterrupt
            if stop_requested():  # asked during the last step's checkpoint: the round is complete, stop now
                raise KeyboardInterrupt
        return LoopResult(end, losses, saved)

    def _save(self, plan: LoopPlan, step: int) -> Path:
        """Checkpoint ``step`` into ``plan.folder``: weights, optimizer, scaler and torch RNG state."""
        tensors, meta = optimizer_to_tensors(self.optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        state = {
            **plan.checkpoint_state,
            "optimizer": meta,
            "grad_scaler": self.scaler.state_dict() if self.use_amp else None,
            # Results differ in the last bits between thread counts: a resumed run takes this one again.
            "threads": torch.get_num_threads(),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        folder = save_checkpoint(plan.folder, step, self.model.state_dict(), tensors, state, keep=plan.keep_checkpoints)
        log.info("checkpoint step %d -> %s", step, folder)
        return folder

    def _parallel(self) -> torch.nn.Module:
        """The model the steps call: itself, or wrapped for data-parallel training under torchrun."""
        if not self.context.enabled:
            return self.model
        device = self.context.device
        model = self.model
        if self.sync_batchnorm and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=self.find_unused_parameters,
        )

    def _progress(self, plan: LoopPlan, values: dict[str, Any], rate: MovingRate, remaining: int) -> None:
        """A progress line: the plan's template, then the recent rate, the elapsed time and the ETA."""
        eta = rate.eta(remaining)
        log.info("%s | %.2f steps/s, elapsed %s, ETA %s", plan.progress.format(**values), rate.rate(),
                 format_duration(values["elapsed_seconds"]), format_duration(eta) if eta < float("inf") else "?")


class _Heartbeat:
    """A progress line every ``plan.progress_seconds`` while a step runs longer than that: the loop's own lines
    come only between steps. Runs on a thread of its own (not when ``progress_seconds`` is 0: every step has its
    line then); the loop tells it when a step starts and when it printed a line."""

    def __init__(self, plan: LoopPlan, rate: MovingRate, end: int) -> None:
        self.plan, self.rate, self.end = plan, rate, end
        self.last_line = self.last_beat = time.perf_counter()  # the loop's last line, and its own
        self.step, self.started = 0, self.last_line
        self.stopped = threading.Event()

    def step_started(self, step: int, now: float) -> None:
        self.step, self.started = step, now

    def run(self) -> None:
        interval = self.plan.progress_seconds
        while not self.stopped.wait(min(1.0, interval / 4)):
            now = time.perf_counter()
            if now - max(self.last_line, self.last_beat) < interval or now - self.started < interval:
                continue
            self.last_beat = now
            eta = self.rate.eta(self.end - self.step)
            log.info("step %d/%d still running after %s | %.2f steps/s, ETA %s", self.step + 1, self.plan.total_steps,
                     format_duration(now - self.started), self.rate.rate(),
                     format_duration(eta) if eta < float("inf") else "?")


@contextmanager
def _running(heartbeat: _Heartbeat | None) -> Iterator[None]:
    """Run ``heartbeat`` on a daemon thread for the duration of the block (nothing when None)."""
    if heartbeat is None:
        yield
        return
    thread = threading.Thread(target=heartbeat.run, name="unscene3d-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        heartbeat.stopped.set()
        thread.join()


@contextmanager
def _stop_requests() -> Iterator[Callable[[], bool]]:
    """Within the block, the first SIGINT (Ctrl-C) or SIGTERM only sets a flag, read by the function yielded,
    so that the loop stops between steps with a checkpoint; a second one interrupts at once. Outside the
    main thread (where signal handlers cannot be set) nothing changes and the flag stays down."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def request(number: int, frame: Any) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        log.warning("stopping after the current step, with a checkpoint (press Ctrl-C again to stop at once)")

    for number in previous:
        signal.signal(number, request)
    try:
        yield requested.is_set
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _cell(value: Any, spec: str) -> str:
    return format(int(value), spec) if spec == "d" else format(value, spec)


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into safetensors-friendly tensors and JSON-friendly metadata."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for param_id, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{param_id}.{key}"] = value
            else:
                scalars[f"{param_id}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the optimizer state dict written by :func:`optimizer_to_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, param_id, key = name.split(".", 2)
            state.setdefault(int(param_id), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}
