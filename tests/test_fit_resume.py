"""Training by the clock: checkpoints by time and on Ctrl-C, resumed runs identical to uninterrupted ones, progress
lines by time with a moving-rate ETA, thread pools sized to the free cores."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal

import pytest
import torch
from test_loop import run_toy, toy_loop, toy_plan, toy_step

from unscene3d.model.checkpoint import latest_checkpoint, load_checkpoint
from unscene3d.progress import MovingRate
from unscene3d.threads import free_threads, process_threads, use_threads
from unscene3d.train.loop import StepOutput

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_same_checkpoints(a, b) -> None:
    a, b = (load_checkpoint(path, with_optimizer=True) for path in (a, b))
    assert a.step == b.step
    for tensors, others in ((a.model, b.model), (a.optimizer, b.optimizer)):
        assert set(tensors) == set(others)
        for name in tensors:
            assert torch.equal(tensors[name], others[name]), name


def test_a_time_based_checkpoint_resumes_to_the_same_weights(tmp_path):
    """checkpoint_every never fires (100 steps): the checkpoints the interrupted call leaves come from the clock."""
    torch.manual_seed(1)
    full = run_toy(tmp_path / "full")
    torch.manual_seed(1)
    loop = toy_loop()
    plan = toy_plan(tmp_path / "split")
    by_time = dataclasses.replace(plan, checkpoint_every=100, checkpoint_minutes=1e-9)
    first = loop.run(toy_step(loop), by_time, 3)
    assert first.checkpoint.name == "step_0000003"
    assert sorted(p.name for p in (tmp_path / "split" / "checkpoints").iterdir()) == ["step_0000002", "step_0000003"]
    torch.manual_seed(2)
    second = run_toy(tmp_path / "split", resume=True)
    assert first.losses + second.losses == full.losses
    assert_same_checkpoints(tmp_path / "full", tmp_path / "split")


def test_ctrl_c_finishes_the_step_saves_it_and_a_resumed_run_repeats_the_uninterrupted_one(tmp_path, caplog):
    torch.manual_seed(1)
    full = run_toy(tmp_path / "full")
    torch.manual_seed(1)
    loop = toy_loop()
    step_fn = toy_step(loop)

    def interrupted(step: int, model: torch.nn.Module) -> StepOutput:
        if step == 2:  # during the third step: it still finishes, and is the checkpoint
            os.kill(os.getpid(), signal.SIGINT)
        return step_fn(step, model)

    previous = signal.getsignal(signal.SIGINT)
    with caplog.at_level(logging.WARNING, logger="unscene3d.train.loop"), pytest.raises(KeyboardInterrupt):
        loop.run(interrupted, toy_plan(tmp_path / "split"))
    assert signal.getsignal(signal.SIGINT) is previous  # the loop's handler is gone
    assert latest_checkpoint(tmp_path / "split").name == "step_0000003"
    assert any("stopped after step 3 of 6" in record.getMessage() for record in caplog.records)
    torch.manual_seed(2)
    second = run_toy(tmp_path / "split", resume=True)
    assert second.losses == full.losses[3:]
    assert_same_checkpoints(tmp_path / "full", tmp_path / "split")


def test_a_killed_save_leaves_an_incomplete_folder_that_the_next_save_removes(tmp_path):
    run_toy(tmp_path, 2)
    incomplete = tmp_path / "checkpoints" / "step_0000003"
    incomplete.mkdir()
    (incomplete / "model.safetensors").write_bytes(b"half")  # no state.json: killed mid-save
    assert latest_checkpoint(tmp_path).name == "step_0000002"
    run_toy(tmp_path, 2, resume=True)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000002", "step_0000004"]


def test_progress_lines_come_by_time_as_well_as_by_steps(tmp_path, caplog):
    loop = toy_loop()
    plan = toy_plan(tmp_path)
    by_time = dataclasses.replace(plan, log_every=100, progress_seconds=0.0)
    with caplog.at_level(logging.INFO, logger="unscene3d.train.loop"):
        loop.run(toy_step(loop), by_time)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("toy step")]
    assert [line.split()[2] for line in lines] == [f"{step}/6" for step in range(1, 7)]
    assert all("steps/s" in line and "ETA" in line for line in lines)


def test_the_moving_rate_follows_a_change_of_speed():
    rate = MovingRate(window=10.0, now=0.0)
    for step in range(1, 21):  # 1 step/s for 20 s
        rate.update(step, now=float(step))
    assert rate.rate() == pytest.approx(1.0) and rate.eta(30) == pytest.approx(30.0)
    for step in range(21, 31):  # then 0.25 steps/s (the machine got busy) for 40 s
        rate.update(step, now=20.0 + 4 * (step - 20))
    assert rate.rate() == pytest.approx(0.25)  # the average since the start would say 0.5
    assert MovingRate(now=0.0).eta(5) == float("inf")


def test_free_threads_are_the_cores_less_the_load_and_at_least_one():
    assert free_threads(cores=8, load=0.2) == 8
    assert free_threads(cores=8, load=2.6) == 5
    assert free_threads(cores=2, load=1.4) == 1
    assert free_threads(cores=2, load=9.0) == 1
    assert 1 <= free_threads() <= (os.cpu_count() or 1)


def test_use_threads_sizes_torch_and_the_environment(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    assert use_threads(2) == 2
    assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2" and process_threads() == 2
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert use_threads(1) == 1 and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays
