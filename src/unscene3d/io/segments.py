"""ScanNet segment files (``*.segs.json``): one segment id per mesh vertex.

Format: ``{"params": {...}, "sceneId": "...", "segIndices": [id, id, ...]}``. The ids are whatever the
writer chose (the ScanNet Segmentator uses one vertex id of each segment); only equality matters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from unscene3d.errors import InputError
from unscene3d.io.atomic import atomic_write_text


def read_segs_json(path: str | Path, num_vertices: int | None = None) -> np.ndarray:
    """Read ``segIndices`` as an (N,) int64 array.

    Raises:
        InputError: the file is missing or not JSON, ``segIndices`` is missing or not a list of
            integers, or its length differs from ``num_vertices`` (when given).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        content = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not valid JSON ({error})") from None
    if not isinstance(content, dict) or "segIndices" not in content:
        raise InputError(path, "segments file has no 'segIndices' key")
    raw = content["segIndices"]
    if not isinstance(raw, list):
        raise InputError(path, f"'segIndices' must be a list, got {type(raw).__name__}")
    seg_indices = np.asarray(raw) if raw else np.zeros(0, np.int64)
    if seg_indices.ndim != 1 or seg_indices.dtype.kind not in "iu":
        raise InputError(path, "'segIndices' must be a flat list of integers")
    if num_vertices is not None and len(seg_indices) != num_vertices:
        raise InputError(path, f"'segIndices' has {len(seg_indices)} entries, expected one per vertex ({num_vertices})")
    return seg_indices.astype(np.int64)


def write_segs_json(path: str | Path, seg_indices: np.ndarray, scene_id: str, params: dict[str, Any]) -> None:
    """Write segments in the ScanNet format, atomically."""
    seg_indices = np.asarray(seg_indices)
    if seg_indices.ndim != 1 or (seg_indices.size and seg_indices.dtype.kind not in "iu"):
        raise ValueError(f"seg_indices must be a 1-D integer array, got {seg_indices.dtype} {seg_indices.shape}")
    content = {"params": params, "sceneId": scene_id, "segIndices": seg_indices.astype(np.int64).tolist()}
    atomic_write_text(path, json.dumps(content, separators=(",", ":")))
