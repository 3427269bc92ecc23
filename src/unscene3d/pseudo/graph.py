"""The segment graph that knows where segments are: affinities only between touching segments.

The official affinity links every pair of segments whose features are alike, wherever they are, so
two chairs on opposite sides of a room are as close as a chair's seat and its back. Here an edge
joins two segments only where the surface runs from one into the other (a mesh edge or a
neighbouring point pair crosses their border), and its weight is the product of three cues
(Shi and Malik's NCut weights combined feature similarity with proximity; this is that idea on a
surface graph):

- **contact**: how many surface edges cross the border, so a long shared border binds more than
  a chair leg touching a table;
- **feature similarity**: ``exp(-d^2 / 2 sigma^2)`` of the feature distance ``d`` (Euclidean
  for descriptors, ``1 - cosine`` for learned features), with ``sigma`` a multiple of the median
  distance over the scan's edges, so one setting fits every modality and scan;
- **convexity**: two patches meeting at a concave crease (a seat on a floor, a box on a table)
  usually belong to different objects, two meeting at a convex edge (the sides of a box) to one.
  Stein et al.'s LCCP test: the border is convex when ``(n_i - n_j) . (c_i - c_j) > 0`` for the
  patches' mean normals ``n`` and centroids ``c``. A concave border is weakened by
  ``exp(-angle^2 / 2 sigma_angle^2)`` of the angle between the normals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from unscene3d.segments.contacts import convex_borders
from unscene3d.segments.geometry import SegmentGeometry

# Weights never drop to zero, so that a touching pair always stays connected in the graph.
_MIN_WEIGHT = 1e-9


@dataclass(frozen=True)
class GraphConfig:
    """Constants of the segment graph's edge weights."""

    feature_scale: float = 1.0  # sigma as a multiple of the median feature distance over edges
    concave_angle: float = 0.35  # radians; sigma of the concave-crease penalty
    feature_distance: str = "euclidean"  # or "cosine" (learned features)
    feature_source: str = "features"  # the modality's segment features, or "colour" (mean Lab)


def _feature_distance(features: np.ndarray, rows: np.ndarray, cols: np.ndarray, kind: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if kind == "cosine":
        unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        return 1.0 - np.einsum("ij,ij->i", unit[rows], unit[cols])
    if kind == "euclidean":
        return np.linalg.norm(features[rows] - features[cols], axis=1)
    raise ValueError(f"feature_distance must be 'euclidean' or 'cosine', got {kind!r}")


def segment_affinity(
    geometry: SegmentGeometry,
    contacts: scipy.sparse.csr_matrix,
    features: np.ndarray,
    config: GraphConfig | None = None,
) -> scipy.sparse.csr_matrix:
    """(S, S) symmetric sparse affinity between touching segments (weights in the module docstring)."""
    config = config or GraphConfig()
    coo = contacts.tocoo()
    rows, cols, contact = coo.row, coo.col, coo.data
    distance = _feature_distance(features, rows, cols, config.feature_distance)
    scale = config.feature_scale * (np.median(distance) if len(distance) else 1.0)
    similarity = np.exp(-0.5 * (distance / max(scale, 1e-12)) ** 2)
    normal = geometry.unit_normal
    angle = np.arccos(np.clip(np.einsum("ij,ij->i", normal[rows], normal[cols]), -1.0, 1.0))
    crease = np.where(convex_borders(geometry, rows, cols), 1.0, np.exp(-0.5 * (angle / config.concave_angle) ** 2))
    weights = np.maximum(contact * similarity * crease, _MIN_WEIGHT)
    return scipy.sparse.csr_matrix((weights, (rows, cols)), shape=contacts.shape)
