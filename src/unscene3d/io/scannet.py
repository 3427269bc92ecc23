"""ScanNet scene folders: mesh, axis alignment, posed frames and ground truth.

A scene folder ``<scene>/`` holds (only the mesh is required):

- ``<scene>_vh_clean_2.ply``: the mesh (vertex colours, triangles);
- ``<scene>.txt``: scene meta data, with ``axisAlignment = <16 numbers, row-major 4x4>``;
- ``exported/``: SensReader export (see :mod:`unscene3d.io.frames`); a folder holding ``color/`` and
  ``pose/`` directly is accepted too;
- ground truth, either ``instance_gt/<scene>.txt`` (benchmark format, one ``label * 1000 + instance``
  per vertex) or the release files ``<scene>.aggregation.json``,
  ``<scene>_vh_clean_2.0.010000.segs.json`` and ``<scene>_vh_clean_2.labels.ply``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.io.benchmark import read_gt_txt
from unscene3d.io.frames import read_exported_frames
from unscene3d.io.ply import read_ply
from unscene3d.io.segments import read_segs_json
from unscene3d.scene import Frame, Scene

logger = logging.getLogger(__name__)

MESH_SUFFIX = "_vh_clean_2.ply"


def read_axis_alignment(meta_txt: str | Path) -> np.ndarray | None:
    """Read ``axisAlignment`` from a ScanNet meta file as a 4x4 matrix; None when the key is absent.

    Raises:
        InputError: the file is missing, or the value is not 16 finite numbers.
    """
    meta_txt = Path(meta_txt)
    if not meta_txt.is_file():
        raise InputError(meta_txt, "no such file (scene meta data)")
    for line in meta_txt.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() != "axisAlignment":
            continue
        try:
            numbers = [float(word) for word in value.split()]
        except ValueError:
            raise InputError(meta_txt, f"axisAlignment is not a list of numbers: {value.strip()[:60]!r}") from None
        if len(numbers) != 16:
            raise InputError(meta_txt, f"axisAlignment has {len(numbers)} numbers, expected 16 (a 4x4 matrix)")
        matrix = np.array(numbers, dtype=np.float64).reshape(4, 4)
        if not np.isfinite(matrix).all():
            raise InputError(meta_txt, "axisAlignment has NaN or infinite values")
        return matrix
    return None


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid/affine transform to (N, 3) points."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def align_geometry(
    vertices: np.ndarray, normals: np.ndarray | None, alignment: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Move vertices by a rigid 4x4 alignment and turn normals with its rotation."""
    rotated_normals = None if normals is None else (normals @ alignment[:3, :3].T).astype(normals.dtype)
    return transform_points(vertices, alignment), rotated_normals


def scene_axis_alignment(meta_txt: Path) -> np.ndarray | None:
    """The scene's axisAlignment, or None with a warning when the meta file or the key is absent."""
    if not meta_txt.is_file():
        logger.warning("%s: not found; scene left without axis alignment", meta_txt)
        return None
    alignment = read_axis_alignment(meta_txt)
    if alignment is None:
        logger.warning("%s: no axisAlignment; scene left without axis alignment", meta_txt)
    return alignment


def find_scannet_mesh(folder: Path) -> Path | None:
    """The scene's ``<folder name>_vh_clean_2.ply``, else the only ``*_vh_clean_2.ply`` in the folder."""
    named = folder / f"{folder.name}{MESH_SUFFIX}"
    if named.is_file():
        return named
    candidates = sorted(folder.glob(f"*{MESH_SUFFIX}"))
    return candidates[0] if len(candidates) == 1 else None


def load_scannet_scene(
    folder: str | Path, *, axis_align: bool = False, load_frames: bool = True, load_gt: bool = True
) -> Scene:
    """Load a ScanNet scene folder.

    The scene name is the mesh file name without ``_vh_clean_2.ply`` (normally the folder's name).
    With ``axis_align`` the ``axisAlignment`` of ``<scene>.txt`` is applied to the vertices and to the
    frame poses (``pose' = A @ pose``), so frames stay registered to the mesh; a scene without an
    alignment (e.g. ScanNet's test split) is left as is, with a warning.

    Raises:
        InputError: the folder or its mesh is missing, or any file present is malformed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such folder")
    mesh_path = find_scannet_mesh(folder)
    if mesh_path is None:
        raise InputError(folder, f"not a ScanNet scene folder: no {folder.name}{MESH_SUFFIX}")
    name = mesh_path.name[: -len(MESH_SUFFIX)]
    mesh = read_ply(mesh_path)
    vertices = mesh.vertices

    frames: list[Frame] = []
    if load_frames:
        frame_folder = _frame_folder(folder)
        if frame_folder is not None:
            frames = read_exported_frames(frame_folder)

    normals = mesh.normals
    if axis_align:
        alignment = scene_axis_alignment(folder / f"{name}.txt")
        if alignment is not None:
            vertices, normals = align_geometry(vertices, normals, alignment)
            for frame in frames:
                frame.pose = alignment @ frame.pose

    gt = _load_gt(folder, name, len(vertices)) if load_gt else None
    return Scene(
        name=name,
        vertices=vertices,
        faces=mesh.faces,
        colors=mesh.colors,
        normals=normals,
        frames=frames,
        gt=gt,
        source=folder,
    )


def _frame_folder(folder: Path) -> Path | None:
    exported = folder / "exported"
    if exported.is_dir():
        return exported
    if (folder / "color").is_dir() and (folder / "pose").is_dir():
        return folder
    return None


def _load_gt(folder: Path, name: str, num_vertices: int) -> np.ndarray | None:
    benchmark_gt = folder / "instance_gt" / f"{name}.txt"
    if benchmark_gt.is_file():
        return read_gt_txt(benchmark_gt, num_vertices)
    release_files = (
        folder / f"{name}.aggregation.json",
        folder / f"{name}_vh_clean_2.0.010000.segs.json",
        folder / f"{name}_vh_clean_2.labels.ply",
    )
    present = [path.is_file() for path in release_files]
    if all(present):
        return gt_from_release_files(*release_files, num_vertices=num_vertices)
    if any(present):
        missing = ", ".join(path.name for path, found in zip(release_files, present) if not found)
        logger.warning("%s: incomplete ScanNet annotation files (missing %s); no ground truth", folder, missing)
    return None


def gt_from_release_files(
    aggregation_json: Path, segs_json: Path, labels_ply: Path, *, num_vertices: int
) -> np.ndarray:
    """Build benchmark ground truth (``nyu40 * 1000 + instance``) from ScanNet's release annotations.

    Each ``segGroups`` entry is an instance with id ``objectId + 1`` covering the vertices of its
    segments; later groups win where groups overlap, and vertices in no group get 0. An instance's
    NYU40 label is the most frequent ``label`` among its vertices in ``*_vh_clean_2.labels.ply`` (ties:
    the smaller id). The official export maps each group's raw category through
    ``scannetv2-labels.combined.tsv`` instead, a table this package does not ship; the labels mesh was
    made with that same table, so the two agree wherever the annotation is consistent.
    """
    seg_indices = read_segs_json(segs_json, num_vertices)
    labels_mesh = read_ply(labels_ply)
    if len(labels_mesh.vertices) != num_vertices:
        raise InputError(labels_ply, f"has {len(labels_mesh.vertices)} vertices, expected {num_vertices} (the mesh's)")
    if "label" not in labels_mesh.vertex_properties:
        raise InputError(labels_ply, "has no per-vertex 'label' property")
    vertex_labels = np.asarray(labels_mesh.vertex_properties["label"]).astype(np.int64)
    if vertex_labels.size and vertex_labels.min() < 0:
        raise InputError(labels_ply, f"has a negative label ({vertex_labels.min()})")

    gt = np.zeros(num_vertices, dtype=np.int64)
    for object_id, segments in _read_seg_groups(aggregation_json):
        mask = np.isin(seg_indices, segments)
        if not mask.any():
            continue
        label = int(np.bincount(vertex_labels[mask]).argmax())
        gt[mask] = label * 1000 + object_id + 1
    return gt


def _read_seg_groups(aggregation_json: Path) -> list[tuple[int, np.ndarray]]:
    try:
        content = json.loads(aggregation_json.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(aggregation_json, f"not valid JSON ({error})") from None
    groups = content.get("segGroups") if isinstance(content, dict) else None
    if not isinstance(groups, list):
        raise InputError(aggregation_json, "has no 'segGroups' list")
    result = []
    for position, group in enumerate(groups):
        object_id = group.get("objectId") if isinstance(group, dict) else None
        segments = group.get("segments") if isinstance(group, dict) else None
        if not isinstance(object_id, int) or object_id < 0:
            raise InputError(aggregation_json, f"segGroups[{position}] has no non-negative integer 'objectId'")
        if not isinstance(segments, list) or not all(isinstance(s, int) for s in segments):
            raise InputError(aggregation_json, f"segGroups[{position}] has no list of integer 'segments'")
        result.append((object_id, np.asarray(segments, dtype=np.int64)))
    return result
