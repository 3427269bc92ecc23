"""Crash safety: a run killed with SIGKILL leaves no half-written output, and the re-run removes its temp
files, skips the finished work and ends with the same outputs as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.io.atomic import atomic_output, atomic_symlink, remove_stale_temps
from unscene3d.io.ply import write_ply
from unscene3d.synthetic import make_synthetic_scene


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def temp_name(target: str, pid: int) -> str:
    return f".{target}.unscene3d-{pid}-abc123_x.tmp"


def test_only_the_temp_files_of_dead_writers_are_removed(tmp_path):
    dead = dead_pid()
    stale = [tmp_path / temp_name("a.txt", dead), tmp_path / "pred_mask" / temp_name("s_0.txt", dead)]
    live = tmp_path / temp_name("b.txt", os.getpid())  # a writer still at work
    foreign = tmp_path / ".notes.123.tmp"  # not ours
    for path in [*stale, live, foreign]:
        path.parent.mkdir(exist_ok=True)
        path.write_text("partial")
    link = tmp_path / temp_name("checkpoint", dead)
    os.symlink("pred_mask", link)  # a checkpoint link a killed run was switching
    assert sorted(remove_stale_temps(tmp_path)) == sorted([*stale, link])
    assert live.exists() and foreign.exists() and not link.is_symlink()


def test_a_target_s_own_temp_files_only(tmp_path):
    dead = dead_pid()
    mine, other = tmp_path / temp_name("out.json", dead), tmp_path / temp_name("other.json", dead)
    mine.write_text("x")
    other.write_text("x")
    assert remove_stale_temps(tmp_path, target=tmp_path / "out.json") == [mine]
    assert other.exists()


def test_temp_files_carry_the_writer_pid(tmp_path):
    with atomic_output(tmp_path / "x.txt") as tmp:
        assert tmp.name.startswith(f".x.txt.unscene3d-{os.getpid()}-") and tmp.name.endswith(".tmp")
        assert remove_stale_temps(tmp_path) == []  # our own: kept
    atomic_symlink(tmp_path / "latest", "x.txt")
    assert (tmp_path / "latest").read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["latest", "x.txt"]


def output_files(folder: Path) -> dict[str, bytes | dict]:
    """Every file under ``folder``; .npz files by their arrays (zip entries carry write times)."""
    files: dict[str, bytes | dict] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            if path.suffix == ".npz":
                with np.load(path) as data:
                    files[str(path.relative_to(folder))] = {key: data[key].tolist() for key in data.files}
            else:
                files[str(path.relative_to(folder))] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scans")
    for seed in range(5):
        scene = make_synthetic_scene(seed, vertex_spacing=0.1)
        write_ply(folder / f"room{seed}.ply", scene.vertices, scene.faces, scene.colors)
    return folder


def test_pseudo_masks_killed_mid_run_resumes_to_identical_outputs(scans, tmp_path):
    reference = tmp_path / "reference"
    result = CliRunner().invoke(app, ["pseudo-masks", str(scans), "-o", str(reference)])
    assert result.exit_code == 0, result.output

    out = tmp_path / "out"
    command = [sys.executable, "-m", "unscene3d", "pseudo-masks", str(scans), "-o", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.npz")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list(out.glob("*.npz")))
    assert 0 < finished < 5, "the kill should land after the first scan and before the last"
    # Whatever the kill interrupted, a killed writer's temp file looks like this one.
    (out / "pred_mask" / temp_name("room4_0.txt", dead_pid())).write_text("0\n1\n")

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{finished} of 5 scans already done" in rerun.stderr
    assert output_files(out) == output_files(reference)
    assert not [path for path in out.rglob("*") if "unscene3d-" in path.name]
