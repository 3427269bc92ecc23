"""Per-segment geometry: what every later stage measures a segment by.

:func:`segment_geometry` measures every segment of a scan once (area, centroid, principal axes,
mean normal, height span, CIE Lab colour); the scene-structure detector, the contact graph, the cuts'
scores, the ``geometric`` descriptor and the segment model all read it.

Vertex weights are surface areas (a third of every adjacent triangle's area for a mesh, the area a
point covers for a point cloud), so that densely sampled parts do not dominate a segment.
The up axis is +z, as in ScanNet, the synthetic rooms and axis-aligned scans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.spatial

from unscene3d.normals import nearest_vertices, scene_normals
from unscene3d.scene import Scene

# Points of a cloud: the area a point covers is estimated from its distance to this neighbour, and segments
# touch where a point's nearest this many cross their border.
CLOUD_NEIGHBOURS = 8
# The floor height: the lowest level holding this fraction of the busiest level's up-facing area.
_FLOOR_PEAK_FRACTION = 0.25
_LEVEL_BIN = 0.02


@dataclass(frozen=True)
class SegmentGeometry:
    """Per-vertex weights and per-segment measurements of one scan's segments (S segments).

    ``normal`` is the area-weighted mean of unit vertex normals (its length, 1 - spread, is below 1
    when the normals vary). ``eigenvalues`` (S, 3) are the covariance eigenvalues, largest first,
    with ``axes`` (S, 3, 3) their unit eigenvectors as columns. ``floor`` is the scan's floor height.
    """

    labels: np.ndarray  # (N,) compact segment index per vertex
    vertex_area: np.ndarray  # (N,)
    vertex_normals: np.ndarray  # (N, 3) unit (zero where unknown)
    vertex_lab: np.ndarray  # (N, 3)
    area: np.ndarray  # (S,)
    centroid: np.ndarray  # (S, 3)
    normal: np.ndarray  # (S, 3)
    eigenvalues: np.ndarray  # (S, 3)
    axes: np.ndarray  # (S, 3, 3)
    bottom: np.ndarray  # (S,)
    top: np.ndarray  # (S,)
    lab: np.ndarray  # (S, 3)
    lab_std: np.ndarray  # (S, 3)
    floor: float

    @property
    def num_segments(self) -> int:
        return len(self.area)

    @property
    def unit_normal(self) -> np.ndarray:
        """(S, 3) the mean normal scaled to unit length (zero when undefined)."""
        length = np.linalg.norm(self.normal, axis=1, keepdims=True)
        return np.where(length > 1e-12, self.normal / np.maximum(length, 1e-12), 0.0)

    @property
    def thickness(self) -> np.ndarray:
        """(S,) standard deviation across the segment's best-fit plane (metres)."""
        return np.sqrt(self.eigenvalues[:, 2])

    @property
    def plane_normal(self) -> np.ndarray:
        """(S, 3) the best-fit plane's normal (least-variance axis)."""
        return self.axes[:, :, 2]


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (or floats in [0, 1]) to CIE Lab (D65 white)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.max(initial=0.0) > 1.0:
        rgb = rgb / 255.0
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def vertex_areas(vertices: np.ndarray, faces: np.ndarray, nearest: np.ndarray | None = None) -> np.ndarray:
    """(N,) surface area per vertex: a third of every adjacent triangle (mesh), or for a point
    cloud the area of a disc reaching its 8th neighbour divided among the 8 points inside it (``nearest``:
    the distances of :func:`~unscene3d.normals.nearest_vertices` when already known)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces):
        corners = vertices[faces]
        face_area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
        return np.bincount(faces.ravel(), np.repeat(face_area / 3.0, 3), minlength=len(vertices))
    neighbours = cloud_neighbours(len(vertices))
    if neighbours < 1:
        return np.ones(len(vertices))
    if nearest is None:
        nearest, _ = scipy.spatial.cKDTree(vertices).query(vertices, k=neighbours + 1)
    return np.pi * nearest[:, neighbours] ** 2 / neighbours


def cloud_neighbours(count: int) -> int:
    """How many nearest points a cloud of ``count`` points measures areas and contacts with."""
    return min(CLOUD_NEIGHBOURS, count - 1)


def unit_vertex_normals(scene: Scene) -> np.ndarray:
    """(N, 3) unit normals: the scan's own, the mesh's area-blended ones, or a point cloud's estimated ones
    (:func:`unscene3d.normals.scene_normals`); zero where none."""
    normals = np.nan_to_num(np.asarray(scene_normals(scene), dtype=np.float64))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(length > 1e-12, normals / np.maximum(length, 1e-12), 0.0)


def floor_height(vertices: np.ndarray, normals: np.ndarray, area: np.ndarray) -> float:
    """Height of the floor: the lowest 2 cm level whose up-facing (|n_z| > 0.9) area reaches a
    quarter of the busiest level's, so that a few stray points below the floor do not count."""
    horizontal = np.abs(normals[:, 2]) > 0.9
    if not horizontal.any():
        return float(np.percentile(vertices[:, 2], 1))
    heights = vertices[horizontal, 2]
    edges = np.arange(heights.min(), heights.max() + 2 * _LEVEL_BIN, _LEVEL_BIN)
    mass, _ = np.histogram(heights, edges, weights=area[horizontal])
    level = int(np.flatnonzero(mass >= _FLOOR_PEAK_FRACTION * mass.max())[0])
    return float(edges[level] + _LEVEL_BIN / 2)


def _weighted_mean(values: np.ndarray, labels: np.ndarray, weights: np.ndarray, total: np.ndarray) -> np.ndarray:
    count = len(total)
    sums = np.stack([np.bincount(labels, weights * values[:, k], count) for k in range(values.shape[1])], axis=1)
    return sums / np.maximum(total, 1e-12)[:, None]


def segment_geometry(scene: Scene, labels: np.ndarray, num_segments: int) -> SegmentGeometry:
    """Measure every segment of ``scene`` (``labels``: compact segment index per vertex)."""
    vertices = np.asarray(scene.vertices, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    normals = unit_vertex_normals(scene)
    neighbours = cloud_neighbours(len(vertices))
    nearest = nearest_vertices(scene, neighbours)[0] if not scene.has_faces and neighbours >= 1 else None
    weight = vertex_areas(vertices, scene.faces, nearest)
    if weight.sum() <= 0:  # degenerate surface: fall back to counting vertices
        weight = np.ones(len(vertices))
    area = np.bincount(labels, weight, num_segments)
    centroid = _weighted_mean(vertices, labels, weight, area)
    mean_normal = _weighted_mean(normals, labels, weight, area)
    offsets = vertices - centroid[labels]
    outer = (offsets[:, :, None] * offsets[:, None, :]).reshape(-1, 9)
    covariance = _weighted_mean(outer, labels, weight, area).reshape(-1, 3, 3)
    eigenvalues, axes = np.linalg.eigh(covariance)
    eigenvalues, axes = np.clip(eigenvalues[:, ::-1], 0.0, None), axes[:, :, ::-1]

    colors = scene.colors if scene.colors is not None else np.full((len(vertices), 3), 128, np.uint8)
    lab = rgb_to_lab(colors)
    lab_mean = _weighted_mean(lab, labels, weight, area)
    lab_square = _weighted_mean(lab**2, labels, weight, area)
    bottom = np.full(num_segments, np.inf)
    top = np.full(num_segments, -np.inf)
    np.minimum.at(bottom, labels, vertices[:, 2])
    np.maximum.at(top, labels, vertices[:, 2])
    return SegmentGeometry(
        labels=labels,
        vertex_area=weight,
        vertex_normals=normals,
        vertex_lab=lab,
        area=area,
        centroid=centroid,
        normal=mean_normal,
        eigenvalues=eigenvalues,
        axes=axes,
        bottom=bottom,
        top=top,
        lab=lab_mean,
        lab_std=np.sqrt(np.clip(lab_square - lab_mean**2, 0.0, None)),
        floor=floor_height(vertices, normals, weight),
    )
