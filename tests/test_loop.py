"""The shared training loop on a toy model: exact resume, log.csv, progress lines, checkpoints, DDP."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from unscene3d.model.checkpoint import latest_checkpoint, load_checkpoint
from unscene3d.train.distributed import DistributedContext
from unscene3d.train.loop import LOG_FILE, LoopPlan, StepOutput, TrainLoop

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = DistributedContext(rank=0, world_size=1, device=torch.device("cpu"))
COLUMNS = {"step": "d", "loss": ".6f", "kept": "d", "points": "d", "lr": ".6g", "step_seconds": ".3f",
           "elapsed_seconds": ".1f"}


def toy_loop(context: DistributedContext = CPU) -> TrainLoop:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    return TrainLoop(model, torch.optim.AdamW(model.parameters()), context, amp=True)


def toy_step(loop: TrainLoop, rank: int = 0):
    """A step whose batch comes from the step (and rank) and whose dropout draws on torch's global RNG."""

    def step_fn(step: int, model: torch.nn.Module) -> StepOutput:
        rng = np.random.default_rng([step, rank])
        x = torch.from_numpy(rng.normal(size=(16, 3)).astype(np.float32))
        with loop.autocast():
            loss = ((model(x)[:, 0] - x.sum(1)) ** 2).mean()
        return StepOutput(loss, {"loss": loss.detach(), "kept": 2.5 + rank}, {"points": 16})

    return step_fn


def toy_plan(folder: Path, total_steps: int = 6) -> LoopPlan:
    return LoopPlan(folder=folder, total_steps=total_steps, learning_rate=lambda step: 0.01 / (step + 1),
                    columns=COLUMNS, progress="toy step {step}/{total} loss {loss:.4f} lr {lr:.3g}", log_every=2,
                    checkpoint_every=2, keep_checkpoints=2, checkpoint_state={"backbone": None, "train": {"toy": True}})


def run_toy(folder: Path, max_steps: int | None = None, *, resume: bool = False):
    loop = toy_loop()
    if resume:
        loop.restore(load_checkpoint(latest_checkpoint(folder), with_optimizer=True))
    return loop.run(toy_step(loop), toy_plan(folder), max_steps)


def test_a_resumed_run_repeats_an_uninterrupted_one(tmp_path):
    torch.manual_seed(1)
    full = run_toy(tmp_path / "full")
    torch.manual_seed(1)
    first = run_toy(tmp_path / "split", 3)
    torch.manual_seed(2)  # as in a new process: the resumed run's dropout draws on the checkpoint's torch RNG
    second = run_toy(tmp_path / "split", resume=True)
    assert (first.last_step, second.last_step, full.last_step) == (3, 6, 6)
    assert first.losses + second.losses == full.losses
    a, b = (load_checkpoint(tmp_path / name, with_optimizer=True) for name in ("full", "split"))
    assert a.step == b.step == 6
    for tensors, others in ((a.model, b.model), (a.optimizer, b.optimizer)):
        assert set(tensors) == set(others)
        for name in tensors:
            assert torch.equal(tensors[name], others[name]), name
    logs = []
    for name in ("full", "split"):
        with open(tmp_path / name / LOG_FILE) as handle:
            logs.append([{k: v for k, v in row.items() if not k.endswith("seconds")} for row in csv.DictReader(handle)])
    assert logs[0] == logs[1] and [int(row["step"]) for row in logs[0]] == [1, 2, 3, 4, 5, 6]


def test_checkpoints_hold_the_plan_state_and_the_optimizer(tmp_path):
    result = run_toy(tmp_path, 5)
    assert result.checkpoint == latest_checkpoint(tmp_path) and result.checkpoint.name == "step_0000005"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000004", "step_0000005"]
    state = json.loads((result.checkpoint / "state.json").read_text())
    assert state["train"] == {"toy": True} and state["step"] == 5 and state["grad_scaler"] is None  # no AMP on CPU
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01 / 5)
    assert "rng.torch" in load_checkpoint(result.checkpoint, with_optimizer=True).optimizer
    # A loop with nothing left to do keeps the checkpoint it resumed from.
    loop = toy_loop()
    loop.restore(load_checkpoint(result.checkpoint, with_optimizer=True))
    assert loop.run(toy_step(loop), toy_plan(tmp_path, total_steps=5)) == type(result)(5, [], result.checkpoint)


def test_log_rows_and_progress_lines(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="unscene3d.train.loop"):
        result = run_toy(tmp_path, 5)
    with open(tmp_path / LOG_FILE) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(COLUMNS)
    assert rows[1][:5] == ["1", f"{result.losses[0]:.6f}", "2", "16", "0.01"]  # "d" truncates averages
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("toy step")]
    # The first step, every log_every steps and the last one of the call.
    assert [line.split()[2] for line in progress] == ["1/6", "2/6", "4/6", "5/6"]
    assert progress[0].startswith(f"toy step 1/6 loss {result.losses[0]:.4f} lr 0.01 | ") and "ETA" in progress[0]



def test_a_step_longer_than_the_progress_interval_still_reports(tmp_path, caplog):
    """Progress lines come between steps; a step that runs past ``progress_seconds`` gets its own lines from the
    heartbeat, saying which step and for how long, and none come once the steps are done."""
    loop = toy_loop()
    fast_step = toy_step(loop)

    def slow_step(step, model):
        if step == 1:
            time.sleep(1.2)
        return fast_step(step, model)

    plan = replace(toy_plan(tmp_path, total_steps=3), progress_seconds=0.3)
    with caplog.at_level(logging.INFO, logger="unscene3d.train.loop"):
        loop.run(slow_step, plan)
        ended = len(caplog.records)
        time.sleep(0.6)
    waiting = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert 1 <= len(waiting) <= 4, waiting  # about every 0.3 s of the 1.2 s step after its first 0.3 s (3)
    assert all(line.startswith("step 2/3 still running after ") and "ETA" in line for line in waiting)
    assert len(caplog.records) == ended

WORKER = """
import json, sys
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_loop import toy_loop, toy_plan, toy_step
from unscene3d.train.distributed import distributed

folder = Path({folder!r})
with distributed("cpu") as context:
    loop = toy_loop(context)
    result = loop.run(toy_step(loop, context.rank), toy_plan(folder, total_steps=3))
weights = {{name: value.tolist() for name, value in loop.model.state_dict().items()}}
(folder / f"rank{{context.rank}}.json").write_text(json.dumps({{"losses": result.losses, "weights": weights}}))
"""


def test_data_parallel_ranks_average_losses_and_stay_in_step(tmp_path):
    """Under torchrun (gloo): both ranks end with the same weights and report the same losses (averaged over
    the ranks), and rank 0 alone writes log.csv and the checkpoints."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).parent), folder=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["losses"] == ranks[1]["losses"] and len(ranks[0]["losses"]) == 3
    for name, value in ranks[0]["weights"].items():
        np.testing.assert_array_equal(value, ranks[1]["weights"][name])
    with open(tmp_path / LOG_FILE) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["1", "2", "3"] and {row["kept"] for row in rows} == {"3"}  # mean 3.0
    assert latest_checkpoint(tmp_path).name == "step_0000003"
