"""Posed camera frames in the layout written by ScanNet's SensReader export.

Layout of an export folder::

    color/<N>.jpg                      colour image of frame N
    depth/<N>.png                      optional 16-bit depth in millimetres (0 = unknown)
    pose/<N>.txt                       4x4 camera-to-world matrix in mesh coordinates
    intrinsic/intrinsic_color.txt      4x4 (or 3x3) colour camera matrix
    intrinsic/intrinsic_depth.txt      optional depth camera matrix

ScanNet marks frames where tracking failed with a pose of ``-inf`` values; such frames are skipped with
a warning, since they cannot be placed in the scene.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.scene import Frame

logger = logging.getLogger(__name__)

_COLOR_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_matrix(path: str | Path, shape: tuple[int, ...], *, allow_nonfinite: bool = False) -> np.ndarray:
    """Read a whitespace-separated numeric matrix of the given shape as float64.

    Raises:
        InputError: the file is missing, holds something other than numbers, holds a different
            number of values than ``shape`` needs, or (unless ``allow_nonfinite``) NaN/inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    words = path.read_text(encoding="utf-8", errors="replace").split()
    expected = math.prod(shape)
    shape_text = "x".join(map(str, shape))
    if len(words) != expected:
        raise InputError(path, f"expected a {shape_text} matrix ({expected} numbers), found {len(words)} values")
    try:
        matrix = np.array([float(word) for word in words], dtype=np.float64).reshape(shape)
    except ValueError:
        bad = next(word for word in words if not _is_number(word))
        raise InputError(path, f"expected a {shape_text} matrix of numbers, found {bad[:20]!r}") from None
    if not allow_nonfinite and not np.isfinite(matrix).all():
        raise InputError(path, f"{shape_text} matrix has NaN or infinite values")
    return matrix


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def read_intrinsic(path: str | Path) -> np.ndarray:
    """Read a camera matrix stored as 4x4 (SensReader export) or 3x3; return the 3x3 part."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file (camera intrinsics)")
    count = len(path.read_text(encoding="utf-8", errors="replace").split())
    shape = (3, 3) if count == 9 else (4, 4)
    matrix = read_matrix(path, shape)[:3, :3]
    if not (matrix[0, 0] > 0 and matrix[1, 1] > 0):
        # A zero focal length would project every point to infinity: features from nowhere, no error.
        raise InputError(path, f"focal lengths must be positive, got fx={matrix[0, 0]:g}, fy={matrix[1, 1]:g}")
    return matrix


def read_exported_frames(folder: str | Path) -> list[Frame]:
    """Read the posed frames of a SensReader export folder, sorted by frame number.

    Images are not loaded: each :class:`Frame` holds their paths. Files in ``color/`` whose name is
    not a frame number are ignored. A frame whose pose holds any non-finite value (ScanNet's marker
    for a lost camera) is skipped with a warning.

    Raises:
        InputError: ``color/`` or the colour intrinsics are missing, a colour frame has no pose file,
            or a pose/intrinsic file is malformed.
    """
    folder = Path(folder)
    color_folder = folder / "color"
    if not color_folder.is_dir():
        raise InputError(folder, "frame folder has no 'color/' subfolder")
    intrinsic = read_intrinsic(folder / "intrinsic" / "intrinsic_color.txt")
    depth_intrinsic_path = folder / "intrinsic" / "intrinsic_depth.txt"
    depth_intrinsic = read_intrinsic(depth_intrinsic_path) if depth_intrinsic_path.is_file() else None

    numbered: list[tuple[int, Path]] = []
    for color_path in color_folder.iterdir():
        if color_path.suffix.lower() in _COLOR_SUFFIXES and color_path.stem.isdigit():
            numbered.append((int(color_path.stem), color_path))
    numbered.sort()

    frames: list[Frame] = []
    skipped: list[str] = []
    for number, color_path in numbered:
        pose_path = folder / "pose" / f"{color_path.stem}.txt"
        if not pose_path.is_file():
            raise InputError(pose_path, f"colour frame {color_path.name} has no pose file")
        pose = read_matrix(pose_path, (4, 4), allow_nonfinite=True)
        if not np.isfinite(pose).all():
            skipped.append(color_path.stem)
            continue
        depth_path = folder / "depth" / f"{color_path.stem}.png"
        frames.append(
            Frame(
                pose=pose,
                intrinsic=intrinsic,
                color_path=color_path,
                depth_path=depth_path if depth_path.is_file() else None,
                depth_intrinsic=depth_intrinsic,
                name=str(number),
            )
        )
    if skipped:
        logger.warning(
            "%s: skipped %d frame(s) with an invalid (non-finite) pose: %s",
            folder,
            len(skipped),
            ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""),
        )
    if not frames:
        logger.warning("%s: no usable frames found", folder)
    return frames
