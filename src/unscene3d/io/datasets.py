"""Scan folders of public point-cloud datasets, with their annotations as benchmark ground truth.

- Pointcept scene folder (its preprocessed ScanNet/ScanNet200/S3DIS layout): ``coord.npy`` (N, 3), optional
  ``color.npy`` (0..255) and ``normal.npy``; ``instance.npy`` (-1 = none) with ``segment20.npy`` (ScanNet's
  20 classes, 0..19, -1 = ignored) becomes ``nyu40 * 1000 + instance + 1``.
- S3DIS room folder: ``<room>.txt`` (x y z r g b per line) and ``Annotations/<class>_<i>.txt`` (the room's
  points of one object). Each room point takes the annotation file that holds the same coordinates.
  S3DIS classes map to NYU40 ids so that the 18-class benchmark rule counts objects and voids structure:
  ``S3DIS_TO_NYU40`` (ceiling 22, floor 2, wall 1 and beam, column, stairs 38 "otherstructure" are
  void; window 9, door 8, table 7, chair 5, sofa 6, bookcase 10 keep their benchmark class; board and
  clutter, which have none, are 39 "otherfurniture", a counted class).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.io.pointclouds import RawScan, colour_rows, float_rows

log = logging.getLogger(__name__)

POINTCEPT_COORD = "coord.npy"
# ScanNet's 20 evaluated classes (Pointcept's segment20 indices 0..19) as NYU40 ids.
SCANNET20_TO_NYU40 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
S3DIS_TO_NYU40 = {
    "ceiling": 22, "floor": 2, "wall": 1, "beam": 38, "column": 38, "stairs": 38,
    "window": 9, "door": 8, "table": 7, "chair": 5, "sofa": 6, "bookcase": 10,
    "board": 39, "clutter": 39,
}  # fmt: skip
_ANNOTATION_NAME = re.compile(r"([A-Za-z]+)_(\d+)\.txt")
# S3DIS writes coordinates with 3 decimals; an annotation point matches a room point within this (metres).
_MATCH_TOLERANCE = 1e-4


def is_pointcept_folder(folder: Path) -> bool:
    return (folder / POINTCEPT_COORD).is_file()


def s3dis_room_file(folder: Path) -> Path | None:
    """``<room>/<room>.txt`` when ``folder`` is an S3DIS room folder (it also has ``Annotations/``)."""
    room = folder / f"{folder.name}.txt"
    return room if room.is_file() and (folder / "Annotations").is_dir() else None


def s3dis_scene_name(folder: Path) -> str:
    """``Area_5_office_1``: room names repeat across areas, so the area is part of the name."""
    area = folder.parent.name
    return f"{area}_{folder.name}" if re.fullmatch(r"Area_\d+", area) else folder.name


def read_pointcept_folder(folder: Path) -> RawScan:
    """Read a Pointcept scene folder (module docstring)."""
    points = _load_npy(folder / POINTCEPT_COORD)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(folder / POINTCEPT_COORD, f"expected an (N, 3) array, got {points.shape}")
    scan = RawScan(points.astype(np.float64), up="z", up_reason="Pointcept scenes keep their dataset's z up")
    count = len(points)
    if (folder / "color.npy").is_file():
        scan.colors = colour_rows(folder / "color.npy", _load_npy(folder / "color.npy"), count)
    if (folder / "normal.npy").is_file():
        scan.normals = float_rows(folder / "normal.npy", _load_npy(folder / "normal.npy"), count, "normals")
    instance_path, segment_path = folder / "instance.npy", folder / "segment20.npy"
    if instance_path.is_file() and segment_path.is_file():
        instance = _labels(instance_path, count)
        segment = _labels(segment_path, count)
        if segment.max(initial=-1) >= len(SCANNET20_TO_NYU40):
            raise InputError(segment_path, f"segment20 ids must be -1..19, found {segment.max()}")
        nyu40 = np.asarray(SCANNET20_TO_NYU40)[np.clip(segment, 0, None)]
        scan.gt = np.where((instance >= 0) & (segment >= 0), nyu40 * 1000 + instance + 1, 0)
    return scan


def read_s3dis_room(folder: Path) -> RawScan:
    """Read an S3DIS room folder; its annotations become ground truth (module docstring)."""
    room_file = s3dis_room_file(folder)
    if room_file is None:
        raise InputError(folder, "not an S3DIS room folder (<room>.txt and Annotations/)")
    room = _read_xyzrgb(room_file)
    from scipy.spatial import cKDTree  # on use: scipy adds a fifth of a second to every command's start-up

    gt = np.zeros(len(room), dtype=np.int64)
    tree = cKDTree(room[:, :3])
    counters: dict[int, int] = {}
    for annotation in sorted((folder / "Annotations").glob("*.txt")):
        match = _ANNOTATION_NAME.fullmatch(annotation.name)
        if match is None or match.group(1) not in S3DIS_TO_NYU40:
            log.warning("%s: not a known S3DIS class file, ignored", annotation)
            continue
        label = S3DIS_TO_NYU40[match.group(1)]
        counters[label] = counters.get(label, 0) + 1
        distance, index = tree.query(_read_xyzrgb(annotation)[:, :3], distance_upper_bound=_MATCH_TOLERANCE)
        found = np.isfinite(distance)
        if not found.all():
            log.warning("%s: %d of %d points are not in %s", annotation, int((~found).sum()), len(found),
                        room_file.name)
        gt[index[found]] = label * 1000 + counters[label]
    return RawScan(room[:, :3], colors=room[:, 3:].astype(np.uint8), gt=gt, up="z", up_reason="S3DIS rooms are z up")


def _read_xyzrgb(path: Path) -> np.ndarray:
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise InputError(path, f"expected lines of 'x y z r g b': {str(error).splitlines()[0][:150]}") from None
    if table.shape[1] != 6 or len(table) == 0:
        raise InputError(path, f"expected lines of 6 numbers (x y z r g b), got {table.shape[1]} per line")
    return table


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise InputError(path, f"not a readable .npy file: {str(error).splitlines()[0][:150]}") from None


def _labels(path: Path, count: int) -> np.ndarray:
    values = _load_npy(path).reshape(-1)
    if len(values) != count or not np.issubdtype(values.dtype, np.integer):
        raise InputError(path, f"expected {count} integer labels, got {values.dtype} {values.shape}")
    return values.astype(np.int64)
