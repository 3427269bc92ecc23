"""What a user's paths hold for the viewer: scans, prediction sets and ground truth, found by walking folders.

- A scan: a ``.ply`` file (not one of the coloured files the commands write beside their results, told
  apart by their header: :func:`unscene3d.visualize.is_coloured_output`) or a ScanNet scene folder (not
  walked into).
- A prediction set: a folder with benchmark listings (``<scene>.txt`` whose lines read
  ``pred_mask/<scene>_<i>.txt <label> <score>``) and a ``pred_mask/`` folder: baselines, ``predict``
  output, a run's ``predictions/round_k/``, densified ``round_k/added/``. A set that also holds
  pseudo-mask files (``<scene>.npz`` of ``pseudo-masks``) records where each scene's scan was read from.
- Ground truth: ``<scene>.txt`` files in folders named ``gt`` or ``instance_gt``, or a ScanNet folder's own.

The scenes shown are those of the prediction sets (their scans found by name among the scans found, or
by the path a pseudo-mask file recorded); without prediction sets, every scan found.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.io.benchmark import MASK_FOLDER, is_listing
from unscene3d.io.scan import scan_name
from unscene3d.io.scannet import find_scannet_mesh
from unscene3d.visualize import is_coloured_output

log = logging.getLogger(__name__)

GT_FOLDERS = ("gt", "instance_gt")
# Folders that never hold anything to show: masks of a set, frames, checkpoints.
_SKIPPED_FOLDERS = {MASK_FOLDER, "exported", "checkpoints"}
# Depth below a given folder that is walked: RUN_DIR/predictions/round_k/ is 2, round_k/added/ is 2.
MAX_DEPTH = 4


class ScanNotFound(InputError):
    """A prediction set names a scene whose scan is nowhere to be found."""


@dataclass(frozen=True)
class PredictionSet:
    """A folder of benchmark-format predictions; ``name`` is its layer name."""

    name: str
    folder: Path
    scenes: tuple[str, ...]
    pseudo_scenes: tuple[str, ...] = ()  # scenes that also have a pseudo-mask ``<scene>.npz``


@dataclass
class Inputs:
    """Everything found under the user's paths."""

    scans: dict[str, Path] = field(default_factory=dict)  # scene name -> scan (first found wins)
    prediction_sets: list[PredictionSet] = field(default_factory=list)
    gt_files: dict[str, Path] = field(default_factory=dict)  # scene name -> ground-truth txt
    recorded_scans: dict[str, Path] = field(default_factory=dict)  # scene -> scan path a pseudo-mask file names

    def scenes(self) -> list[str]:
        """The scenes to show, in the order found."""
        if not self.prediction_sets:
            return list(self.scans)
        return list(dict.fromkeys(scene for prediction in self.prediction_sets for scene in prediction.scenes))

    def scan_for(self, scene: str) -> Path:
        """The scan of ``scene``: found by name, else the path its pseudo-mask file recorded (or a scan of
        that file's name among those found, when the recorded path has moved)."""
        if scene in self.scans:
            return self.scans[scene]
        recorded = self.recorded_scans.get(scene)
        if recorded is not None:
            if recorded.exists():
                return recorded
            moved = self.scans.get(_name_of_scan_path(recorded))
            if moved is not None:
                return moved
        where = next(p.folder for p in self.prediction_sets if scene in p.scenes)
        raise ScanNotFound(where, f"no scan found for scene {scene}: give its scan (a .ply or ScanNet folder) "
                                  "as another path")


def find_inputs(paths: Sequence[str | Path]) -> Inputs:
    """Walk the user's paths (files or folders, in order) for scans, prediction sets and ground truth.

    Raises:
        InputError: a path is missing, is a file that is not a scan, or holds nothing to show.
    """
    inputs = Inputs()
    paths = [Path(path) for path in paths]
    if not paths:
        raise InputError(None, "no paths given")
    prefix_names = len(paths) > 1
    for path in paths:
        if not path.exists():
            raise InputError(path, "no such file or folder")
        before = (len(inputs.scans), len(inputs.prediction_sets))
        if path.is_file():
            if path.suffix.lower() != ".ply":
                raise InputError(path, "not a scan (.ply) nor a folder of scans or results")
            _add_scan(inputs, path)
        elif find_scannet_mesh(path) is not None:
            _add_scan(inputs, path)
        else:
            _walk(inputs, path, path.name if prefix_names else "")
        if (len(inputs.scans), len(inputs.prediction_sets)) == before:
            raise InputError(path, "nothing to show: no scans (.ply, ScanNet scene folders) or predictions "
                                   "(<scene>.txt + pred_mask/) found")
    return inputs


def _add_scan(inputs: Inputs, path: Path) -> None:
    name = scan_name(path)
    if name in inputs.scans:
        log.warning("two scans named %s: showing %s, not %s", name, inputs.scans[name], path)
        return
    inputs.scans[name] = path


def _walk(inputs: Inputs, root: Path, prefix: str) -> None:
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        scannet = [name for name in sorted(subfolders) if find_scannet_mesh(here / name) is not None]
        for name in scannet:
            _add_scan(inputs, here / name)
        # Walk on in natural order (round_2 before round_10), past what holds nothing to show.
        subfolders[:] = [] if depth >= MAX_DEPTH else sorted(
            (name for name in subfolders
             if name not in scannet and name not in _SKIPPED_FOLDERS and not name.startswith(".")),
            key=_natural_key,
        )
        files = sorted(name for name in files if not name.startswith("."))
        for name in files:
            if name.lower().endswith(".ply") and not is_coloured_output(here / name):
                _add_scan(inputs, here / name)
        if here.name in GT_FOLDERS:
            for name in files:
                if name.endswith(".txt"):
                    inputs.gt_files.setdefault(name[:-4], here / name)
        elif (here / MASK_FOLDER).is_dir():
            _add_prediction_set(inputs, here, _layer_name(root, here, prefix), files)


def _add_prediction_set(inputs: Inputs, folder: Path, name: str, files: Iterable[str]) -> None:
    files = list(files)
    scenes = tuple(name[:-4] for name in files if name.endswith(".txt") and is_listing(folder / name))
    if not scenes:
        return
    pseudo = []
    for scene in scenes:
        recorded = _recorded_scan(folder / f"{scene}.npz") if f"{scene}.npz" in files else None
        if recorded is not None:
            pseudo.append(scene)
            if recorded != Path(""):
                inputs.recorded_scans.setdefault(scene, recorded)
    inputs.prediction_sets.append(PredictionSet(name, folder, scenes, tuple(pseudo)))


def _recorded_scan(npz: Path) -> Path | None:
    """The scan path a pseudo-mask file recorded (``Path("")`` when it recorded none); None when the file
    is not a pseudo-mask file (e.g. a round's densified ``added`` masks)."""
    try:
        with np.load(npz, allow_pickle=False) as data:
            if "segment_labels" not in data.files:
                return None
            return Path(str(data["scan_path"])) if "scan_path" in data.files else Path("")
    except (OSError, ValueError) as error:
        raise InputError(npz, f"unreadable .npz: {error}") from None


def _layer_name(root: Path, folder: Path, prefix: str) -> str:
    relative = folder.relative_to(root).as_posix()
    parts = [part for part in (prefix, "" if relative == "." else relative) if part]
    return "/".join(parts) or root.name


def _name_of_scan_path(path: Path) -> str:
    return path.stem.removesuffix("_vh_clean_2") if path.suffix.lower() == ".ply" else path.name


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
