"""The ScanNet benchmark text formats for 3D instance segmentation.

Ground truth: ``<scene>.txt`` with one integer per mesh vertex, ``nyu40_label * 1000 + instance``
(0 = no instance).

Predictions: ``<pred_dir>/<scene>.txt`` with one line per instance,
``pred_mask/<scene>_<i>.txt <label_id> <score>``, and each mask file holds one 0/1 per mesh vertex
(the benchmark reads any non-zero integer as "in the mask").
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.io.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

MASK_FOLDER = "pred_mask"
# The file the public ScanNet script writes its results to, inside the prediction folder.
SCANNET_RESULT_FILE = "semantic_instance_evaluation.txt"

_NEWLINE = ord("\n")
# Output names add up to ~45 bytes to a scene name (".<scene>_instances.ply.unscene3d-<pid>-<random>.tmp").
MAX_SCENE_NAME_BYTES = 200


def _read_bytes(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    return path.read_bytes()


_INT64 = np.iinfo(np.int64)


def _parse_int_lines(data: bytes, path: Path) -> np.ndarray:
    """Parse one integer per line (a final newline is optional); name the first bad line."""
    lines = data.splitlines()
    try:
        return np.array([int(line) for line in lines], dtype=np.int64)
    except (ValueError, OverflowError):
        for number, line in enumerate(lines, start=1):
            text = line[:40].decode("utf-8", errors="replace")
            try:
                value = int(line)
            except ValueError:
                raise InputError(path, f"line {number} is not an integer: {text!r}") from None
            if not _INT64.min <= value <= _INT64.max:
                raise InputError(path, f"line {number}: integer {text!r} is out of range (64-bit)")
        raise  # unreachable: some line failed above


def _check_line_count(path: Path, count: int, num_vertices: int | None) -> None:
    if num_vertices is not None and count != num_vertices:
        raise InputError(path, f"has {count} lines, expected {num_vertices} (one per mesh vertex)")


def read_gt_txt(path: str | Path, num_vertices: int | None = None) -> np.ndarray:
    """Read a benchmark ground-truth file: (N,) int64, ``label * 1000 + instance`` per vertex."""
    path = Path(path)
    gt = _parse_int_lines(_read_bytes(path, "ground-truth file"), path)
    _check_line_count(path, len(gt), num_vertices)
    if gt.size and gt.min() < 0:
        raise InputError(path, f"has a negative id ({gt.min()}); ids are label * 1000 + instance >= 0")
    return gt


def _int_lines_bytes(values: np.ndarray) -> bytes:
    return ("\n".join(map(str, values.tolist())) + "\n").encode("ascii") if values.size else b""


def write_gt_txt(path: str | Path, gt: np.ndarray) -> None:
    """Write a benchmark ground-truth file (one integer per vertex), atomically."""
    gt = np.asarray(gt)
    if gt.ndim != 1 or not np.issubdtype(gt.dtype, np.integer):
        raise ValueError(f"gt must be a 1-D integer array, got {gt.dtype} {gt.shape}")
    atomic_write_bytes(path, _int_lines_bytes(gt))


def _mask_bytes(mask: np.ndarray) -> bytes:
    # "0\n"/"1\n" per vertex, built as one byte buffer: ~100x faster than formatting lines.
    buffer = np.full(2 * mask.size, _NEWLINE, dtype=np.uint8)
    buffer[0::2] = ord("0") + mask.astype(np.uint8)
    return buffer.tobytes()


def _read_mask(path: Path, num_vertices: int | None) -> np.ndarray:
    data = _read_bytes(path, "mask file")
    # Fast path for the usual "0\n"/"1\n" layout; anything else goes through the general parser.
    if len(data) % 2 == 0 and (num_vertices is None or len(data) == 2 * num_vertices):
        raw = np.frombuffer(data, dtype=np.uint8)
        digits = raw[0::2]
        if np.all(raw[1::2] == _NEWLINE) and np.all((digits == ord("0")) | (digits == ord("1"))):
            return digits == ord("1")
    values = _parse_int_lines(data, path)
    _check_line_count(path, len(values), num_vertices)
    return values != 0


def _stack_masks(paths: list[Path], masks: list[np.ndarray]) -> np.ndarray:
    """(K, N) masks of one scene; N is the length most masks have, and a mask of another length is named."""
    if not masks:
        return np.zeros((0, 0), dtype=bool)
    lengths = np.array([len(mask) for mask in masks])
    values, counts = np.unique(lengths, return_counts=True)
    common = int(values[counts.argmax()])
    odd = np.flatnonzero(lengths != common)
    if odd.size:
        first = int(odd[0])
        raise InputError(paths[first], f"has {lengths[first]} lines, but the scene's other masks have {common} "
                                       "(one per mesh vertex)")
    return np.stack(masks)


def scene_name_problem(scene_name: str) -> str | None:
    """Why ``scene_name`` cannot name benchmark files, or None when it can.

    The benchmark splits listing lines on spaces, names mask files after the scene, and listings are
    UTF-8 text; a leading dot would hide the files (and is how temp files are named).
    """
    if not scene_name:
        return "the scene name is empty"
    if re.search(r"[\s/\\]", scene_name):
        return f"scene name {scene_name!r} holds a space or path separator"
    if scene_name.startswith("."):
        return f"scene name {scene_name!r} starts with a dot"
    try:
        size = len(scene_name.encode("utf-8"))
    except UnicodeEncodeError:
        return "scene name is not valid UTF-8"
    if size > MAX_SCENE_NAME_BYTES:
        return (f"scene name is {size} bytes long; file names built from it (and their temp files) would pass "
                f"the file system's 255-byte limit (keep it within {MAX_SCENE_NAME_BYTES})")
    return None


def _check_scene_name(scene_name: str) -> None:
    problem = scene_name_problem(scene_name)
    if problem is not None:
        raise ValueError(problem)


def _mask_file_pattern(scene_name: str) -> re.Pattern[str]:
    return re.compile(re.escape(scene_name) + r"_(\d+)\.txt")


def export_predictions(
    out_dir: str | Path,
    scene_name: str,
    masks: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray | int = 1,
) -> Path:
    """Write one scene's instances in the benchmark format; return the path of ``<scene>.txt``.

    masks: (K, N) bool (non-zero = in the mask); scores: (K,); labels: one label id for all or (K,).
    The scene's previous ``<scene>.txt`` is removed first and the new one is written last, so a crash
    midway leaves no listing that points at a mix of old and new masks; mask files of a previous
    export beyond the new count are removed.
    """
    _check_scene_name(scene_name)
    masks = np.asarray(masks)
    if masks.ndim != 2:
        raise ValueError(f"masks must be (K, N), got shape {masks.shape}")
    masks = masks != 0
    num_masks = len(masks)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.broadcast_to(np.asarray(labels), (num_masks,)) if np.ndim(labels) == 0 else np.asarray(labels)
    if scores.shape != (num_masks,) or labels.shape != (num_masks,):
        raise ValueError(f"{num_masks} masks need {num_masks} scores and labels, got {scores.shape}, {labels.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")

    out_dir = Path(out_dir)
    listing = out_dir / f"{scene_name}.txt"
    mask_dir = out_dir / MASK_FOLDER
    mask_dir.mkdir(parents=True, exist_ok=True)
    listing.unlink(missing_ok=True)

    lines = []
    for index, (mask, label, score) in enumerate(zip(masks, labels.tolist(), scores.tolist())):
        relative = f"{MASK_FOLDER}/{scene_name}_{index}.txt"
        atomic_write_bytes(out_dir / relative, _mask_bytes(mask))
        lines.append(f"{relative} {label} {score!r}\n")

    pattern = _mask_file_pattern(scene_name)
    for stale in mask_dir.iterdir():
        match = pattern.fullmatch(stale.name)
        if match and int(match.group(1)) >= num_masks:
            stale.unlink()

    atomic_write_text(listing, "".join(lines))
    log.debug("exported %d instances of %s to %s", num_masks, scene_name, out_dir)
    return listing


def _parse_listing_line(listing: Path, number: int, line: str, pred_dir: Path) -> tuple[Path, int, float]:
    parts = line.split()
    where = f"line {number}"
    if len(parts) != 3:
        raise InputError(listing, f"{where}: expected '<mask path> <label id> <score>', got {line.strip()!r}")
    relative, label_text, score_text = parts
    if os.path.isabs(relative):
        raise InputError(listing, f"{where}: mask path {relative!r} must be relative to the prediction folder")
    mask_path = (listing.parent / relative).resolve()
    if not mask_path.is_relative_to(pred_dir.resolve()):
        raise InputError(listing, f"{where}: mask path {relative!r} points outside {pred_dir}")
    try:
        label = int(float(label_text))  # the benchmark accepts "5" and "5.0"
        score = float(score_text)
    except (ValueError, OverflowError):  # OverflowError: an infinite label
        raise InputError(listing, f"{where}: label id {label_text!r} or score {score_text!r} is not a number") from None
    if not math.isfinite(score):
        raise InputError(listing, f"{where}: score {score_text!r} is not finite")
    return mask_path, label, score


def _read_listing(pred_dir: Path, scene_name: str) -> list[tuple[Path, int, float]]:
    """(mask path, label, score) of each line of ``<pred_dir>/<scene>.txt``."""
    listing = pred_dir / f"{scene_name}.txt"
    text = _read_bytes(listing, "prediction file").decode("utf-8", errors="replace")
    entries = [
        _parse_listing_line(listing, number, line, pred_dir)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    seen: set[Path] = set()
    for mask_path, _, _ in entries:
        if mask_path in seen:
            raise InputError(listing, f"lists mask {mask_path} twice")
        seen.add(mask_path)
    return entries


def read_prediction_mask_paths(pred_dir: str | Path, scene_name: str) -> list[Path]:
    """The mask files one scene's listing names, in its order."""
    return [mask_path for mask_path, _, _ in _read_listing(Path(pred_dir), scene_name)]


def read_predictions(
    pred_dir: str | Path, scene_name: str, num_vertices: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read one scene's benchmark predictions.

    Returns masks (K, N) bool, labels (K,) int64 and scores (K,) float64, in the listing's order.
    With ``num_vertices=None`` N is taken from the mask files, which must agree (N = 0 without masks).
    """
    pred_dir = Path(pred_dir)
    entries = _read_listing(pred_dir, scene_name)

    if num_vertices is None:
        paths = [mask_path for mask_path, _, _ in entries]
        masks = _stack_masks(paths, [_read_mask(mask_path, None) for mask_path in paths])
    else:
        masks = np.zeros((len(entries), num_vertices), dtype=bool)
        for row, (mask_path, _, _) in enumerate(entries):
            masks[row] = _read_mask(mask_path, num_vertices)
    labels = np.array([label for _, label, _ in entries], dtype=np.int64)
    scores = np.array([score for _, _, score in entries], dtype=np.float64)
    return masks, labels, scores


def is_listing(path: str | Path) -> bool:
    """Whether a ``.txt`` is a prediction listing (``<mask> <label> <score>`` lines, or empty: no instance),
    not a per-vertex file (ground truth, `predict`'s ``<scene>_instances.txt``: one integer per line)."""
    with open(path, "rb") as handle:
        for line in handle:
            fields = line.split()
            if fields:
                # Anything but one integer is meant as a listing, so a malformed one is reported, not skipped.
                return not (len(fields) == 1 and fields[0].lstrip(b"-").isdigit())
    return True


def list_prediction_scenes(pred_dir: str | Path) -> list[str]:
    """Names of the scenes with a ``<scene>.txt`` listing in ``pred_dir`` (sorted)."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(pred_dir, "prediction folder not found")
    return sorted(
        path.stem
        for path in pred_dir.glob("*.txt")
        if path.is_file() and not path.name.startswith(".") and path.name != SCANNET_RESULT_FILE
        and is_listing(path)
    )


def list_gt_scenes(gt_dir: str | Path) -> list[str]:
    """Names of the scenes with a ground-truth file ``<scene>.txt`` in ``gt_dir`` (sorted)."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise InputError(gt_dir, "ground-truth folder not found")
    return sorted(path.stem for path in gt_dir.glob("*.txt") if path.is_file() and not path.name.startswith("."))
