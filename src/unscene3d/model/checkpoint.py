"""Checkpoints of a training run: safetensors weights + optimizer state, and a small JSON of config and step.

Layout inside a run folder::

    RUN_DIR/checkpoints/step_0000200/model.safetensors      model weights and buffers
    RUN_DIR/checkpoints/step_0000200/optimizer.safetensors  optimizer / AMP scaler tensors, RNG states
    RUN_DIR/checkpoints/step_0000200/state.json             config, step, optimizer hyper-parameters
    RUN_DIR/checkpoint -> checkpoints/step_0000200          the latest complete checkpoint

Each file is written atomically and ``state.json`` last, so a folder without it is incomplete (a kill
mid-save) and is ignored, and removed by the next save; the ``checkpoint`` link is switched atomically
after the folder is complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from unscene3d.errors import InputError
from unscene3d.io.atomic import atomic_output, atomic_symlink, atomic_write_text

log = logging.getLogger(__name__)

FORMAT = "unscene3d-backbone-checkpoint"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
LATEST_LINK = "checkpoint"


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``folder``, ``state`` (the JSON), ``model`` tensors, ``optimizer`` tensors."""

    folder: Path
    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor] | None

    @property
    def step(self) -> int:
        return int(self.state["step"])


def save_checkpoint(
    run_dir: Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    optimizer_tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    *,
    keep: int = 3,
) -> Path:
    """Write checkpoint ``step`` and point ``RUN_DIR/checkpoint`` at it; keep the newest ``keep`` ones."""
    folder = Path(run_dir) / "checkpoints" / f"step_{step:07d}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, tensors in ((MODEL_FILE, model_state), (OPTIMIZER_FILE, optimizer_tensors)):
        with atomic_output(folder / name) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    atomic_write_text(folder / STATE_FILE, json.dumps({"format": FORMAT, **state, "step": step}, indent=2) + "\n")
    _point_latest(Path(run_dir), folder)
    _prune(Path(run_dir) / "checkpoints", keep)
    return folder


def _point_latest(run_dir: Path, folder: Path) -> None:
    atomic_symlink(run_dir / LATEST_LINK, os.path.relpath(folder, run_dir))


def _prune(checkpoints: Path, keep: int) -> None:
    """Keep the newest ``keep`` complete checkpoints; remove older ones and incomplete ones (a killed save)."""
    folders = sorted(checkpoints.glob("step_*"))
    complete = [p for p in folders if (p / STATE_FILE).is_file()]
    incomplete = [p for p in folders if not (p / STATE_FILE).is_file()]
    for old in (complete[:-keep] if keep > 0 else []) + incomplete:
        shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder for a checkpoint folder, its ``model.safetensors``, or a run folder."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "checkpoint not found")
    if path.is_file():
        if path.name != MODEL_FILE:
            raise InputError(path, f"not a checkpoint: expected a folder or its {MODEL_FILE}")
        path = path.parent
    if (path / STATE_FILE).is_file():
        return path
    if (path / LATEST_LINK / STATE_FILE).is_file():
        return (path / LATEST_LINK).resolve()
    raise InputError(path, f"not a checkpoint: no {STATE_FILE} here nor in {LATEST_LINK}/ (incomplete or not a run)")


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None when it has none."""
    link = Path(run_dir) / LATEST_LINK
    if (link / STATE_FILE).is_file():
        return link.resolve()
    complete = sorted(p for p in (Path(run_dir) / "checkpoints").glob("step_*") if (p / STATE_FILE).is_file())
    return complete[-1] if complete else None


def load_checkpoint(path: str | Path, *, with_optimizer: bool = False) -> Checkpoint:
    """Read a checkpoint (see :func:`resolve_checkpoint` for accepted paths)."""
    folder = resolve_checkpoint(path)
    state_path = folder / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(state_path, f"unreadable checkpoint state: {error}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "step" not in state or "backbone" not in state:
        raise InputError(state_path, f"not a {FORMAT} state file")
    model = _read_tensors(folder / MODEL_FILE)
    optimizer = _read_tensors(folder / OPTIMIZER_FILE) if with_optimizer else None
    return Checkpoint(folder=folder, state=state, model=model, optimizer=optimizer)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(path, "checkpoint file missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(path, f"unreadable safetensors file: {error}") from None


def load_model_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load weights, with a clear error when they belong to a different network configuration."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            details.append(f"{len(wrong)} with other shapes (e.g. {wrong[0]})")
        raise InputError(source, "checkpoint weights do not match the model configuration: " + ", ".join(details))
    model.load_state_dict(tensors)
