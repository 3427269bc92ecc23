"""Exact voxelisation of a scan (vertex -> voxel) and de-voxelisation (voxel -> vertex).

Voxel coordinates are absolute: voxel ``floor(p / voxel_size)``. A coarser level at stride ``s`` (the
output of ``log2(s)`` kernel-2 / stride-2 sparse convolutions) holds voxel ``floor(c / s)`` for each
fine voxel ``c``, provided the fine grid's origin is a multiple of ``s`` -- :func:`grid_origin` makes
it so. Hence every vertex has exactly one voxel at every stride, and copying a voxel's feature to the
vertices inside it is exact (no nearest-neighbour search).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unscene3d.errors import InputError
from unscene3d.normals import scene_normals
from unscene3d.scene import Scene

DEFAULT_VOXEL_SIZE = 0.02
# Coordinates are shifted so the grid origin is a multiple of this; it must be a multiple of the
# largest network stride (16 for Res16UNet).
ORIGIN_ALIGNMENT = 16


@dataclass
class Voxelization:
    """One scan on a voxel grid.

    ``coords`` (M, 3) int64 absolute voxel coordinates (unique rows, lexicographically sorted),
    ``inverse`` (N,) int64 voxel of each point, ``counts`` (M,) points per voxel,
    ``features`` (M, C) float32 mean of the point features in each voxel.
    """

    coords: np.ndarray
    inverse: np.ndarray
    counts: np.ndarray
    features: np.ndarray
    voxel_size: float

    @property
    def num_voxels(self) -> int:
        return int(self.coords.shape[0])


# Voxels are matched across levels by one int64 key per cell of the scan's bounding grid.
MAX_GRID_CELLS = 2**62


def check_voxel_grid(points: np.ndarray, voxel_size: float = DEFAULT_VOXEL_SIZE) -> None:
    """Raise InputError when a grid of ``voxel_size`` over the points' bounding box has too many cells
    to index (a scan with an outlier point far from the rest; at 2 cm, a cube about 30 km on a side)."""
    if len(points) == 0:
        return
    span = np.asarray(points, dtype=np.float64).max(axis=0) - np.asarray(points, dtype=np.float64).min(axis=0)
    if float(np.prod(span / voxel_size + 2 * ORIGIN_ALIGNMENT)) >= MAX_GRID_CELLS:
        size = " x ".join(f"{extent:.3g}" for extent in span)
        raise InputError(None, f"the scan spans {size}: a grid of {100 * voxel_size:g} cm voxels over it has too "
                               "many cells to index (a point far from the rest?)")


def voxel_coordinates(points: np.ndarray, voxel_size: float = DEFAULT_VOXEL_SIZE) -> np.ndarray:
    """(N, 3) int64 absolute voxel coordinates ``floor(p / voxel_size)`` (correct for negative values)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(None, f"points must have shape (N, 3), got {points.shape}")
    if voxel_size <= 0:
        raise InputError(None, f"voxel size must be positive, got {voxel_size}")
    if not np.isfinite(points).all():
        raise InputError(None, "points contain NaN or infinite coordinates")
    check_voxel_grid(points, voxel_size)
    return np.floor(points / voxel_size).astype(np.int64)


def voxelize(
    points: np.ndarray, features: np.ndarray | None = None, voxel_size: float = DEFAULT_VOXEL_SIZE
) -> Voxelization:
    """Group points into voxels; a voxel's feature is the mean of its points' features.

    ``features`` (N, C) (default: a column of ones). ``inverse`` maps each point to its voxel, so
    ``devoxelize(v.features, v.inverse)`` gives every point its voxel's feature.
    """
    coords = voxel_coordinates(points, voxel_size)
    num_points = coords.shape[0]
    if features is None:
        features = np.ones((num_points, 1), dtype=np.float32)
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] != num_points:
        raise InputError(None, f"features must have shape ({num_points}, C), got {features.shape}")
    if num_points == 0:
        return Voxelization(
            np.zeros((0, 3), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
            np.zeros((0, features.shape[1]), np.float32), voxel_size,
        )
    unique, inverse, counts = np.unique(coords, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    sums = np.zeros((unique.shape[0], features.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, features)
    means = (sums / counts[:, None]).astype(np.float32)
    return Voxelization(unique.astype(np.int64), inverse, counts.astype(np.int64), means, voxel_size)


def devoxelize(voxel_features: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Each point's voxel feature: ``voxel_features[inverse]``."""
    return voxel_features[inverse]


def grid_origin(coords: np.ndarray, alignment: int = ORIGIN_ALIGNMENT) -> np.ndarray:
    """The (3,) grid origin: the minimum voxel coordinate rounded down to a multiple of ``alignment``."""
    if coords.shape[0] == 0:
        return np.zeros(3, dtype=np.int64)
    return np.floor_divide(coords.min(axis=0), alignment) * alignment


def coarse_voxel_index(fine_coords: np.ndarray, coarse_coords: np.ndarray, stride: int) -> np.ndarray:
    """For each fine voxel, the row of ``coarse_coords`` (voxels at ``stride``) that contains it.

    Both are in the same frame (e.g. relative to the same aligned origin); the containing coarse voxel of
    ``c`` is ``floor(c / stride)``. Raises ValueError if one is missing (the levels do not belong together).
    """
    parents = np.floor_divide(fine_coords, stride)
    keys, parent_keys = _row_keys(coarse_coords, parents)
    order = np.argsort(keys, kind="stable")
    position = np.searchsorted(keys, parent_keys, sorter=order)
    position = np.minimum(position, max(len(keys) - 1, 0))
    found = order[position] if len(keys) else np.zeros(len(parent_keys), dtype=np.int64)
    if len(keys) == 0 or not np.array_equal(keys[found], parent_keys):
        raise ValueError(f"some voxels have no containing voxel at stride {stride}")
    return found.astype(np.int64)


def _row_keys(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer keys for the rows of ``a`` and ``b`` (equal rows <=> equal keys)."""
    both = np.concatenate([a, b], axis=0).astype(np.int64)
    low = both.min(axis=0) if both.size else np.zeros(3, np.int64)
    shifted = both - low
    extent = shifted.max(axis=0) + 1 if both.size else np.ones(3, np.int64)
    if float(np.prod(extent.astype(np.float64))) >= 2**62:
        raise ValueError("voxel grid too large to index")
    keys = (shifted[:, 0] * extent[1] + shifted[:, 1]) * extent[2] + shifted[:, 2]
    return keys[: len(a)], keys[len(a):]


@dataclass(frozen=True)
class InputChannels:
    """Where each kind of network input sits among a vertex's feature columns.

    Colour ``rgb / 255 - 0.5`` (3 columns, zero for a scan without colour), then normals (3) if used.
    A model without colour gets a constant occupancy column instead: an all-zero input would leave the
    first convolution blind, while a constant lets it see the shape of the occupied neighbourhood.
    """

    use_color: bool = True
    use_normals: bool = False

    @property
    def color(self) -> slice | None:
        return slice(0, 3) if self.use_color else None

    @property
    def normals(self) -> slice | None:
        if not self.use_normals:
            return None
        start = 3 if self.use_color else 0
        return slice(start, start + 3)

    @property
    def count(self) -> int:
        return 3 * self.use_color + 3 * self.use_normals + (not self.use_color)


def scene_point_features(scene: Scene, channels: InputChannels = InputChannels()) -> np.ndarray:
    """(N, channels.count) float32 network input per vertex (see :class:`InputChannels`); a point cloud without
    normals gets estimated ones (:func:`unscene3d.normals.scene_normals`)."""
    num = scene.vertices.shape[0]
    columns = []
    if channels.use_color:
        if scene.colors is not None:
            columns.append(scene.colors.astype(np.float32) / 255.0 - 0.5)
        else:
            columns.append(np.zeros((num, 3), dtype=np.float32))
    if channels.use_normals:
        columns.append(scene_normals(scene))
    if not channels.use_color:
        columns.append(np.ones((num, 1), dtype=np.float32))
    return np.concatenate(columns, axis=1)

