"""Which segments touch, how much, and how their surfaces meet there.

Two segments touch where the surface runs from one into the other: a mesh edge, or a pair of neighbouring
points of a cloud, crosses their border. The number of such crossing edges measures how long the shared
border is (a chair leg touching a table shares a few, two halves of a table top many). At a border the two
surfaces meet either at a convex edge (the sides of a box) or at a concave crease (a seat on a floor, a
box on a table): Stein et al.'s LCCP test tells them apart from the patches' mean normals and centroids.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.spatial

from unscene3d.segments.geometry import SegmentGeometry, cloud_neighbours


def surface_edges(vertices: np.ndarray, faces: np.ndarray, nearest: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Vertex pairs along the surface: the three edges of every face, or for a point cloud each
    point's nearest neighbours (``nearest``: the index of :func:`~unscene3d.normals.nearest_vertices` when
    already known)."""
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces):
        return (np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]]),
                np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]]))
    neighbours = cloud_neighbours(len(vertices))
    if neighbours < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if nearest is None:
        _, nearest = scipy.spatial.cKDTree(vertices).query(vertices, k=neighbours + 1)
    return np.repeat(np.arange(len(vertices)), neighbours), nearest[:, 1:neighbours + 1].ravel()


def segment_contacts(labels: np.ndarray, edge_a: np.ndarray, edge_b: np.ndarray, num_segments: int) -> scipy.sparse.csr_matrix:
    """(S, S) symmetric count of surface edges crossing between each pair of segments."""
    la, lb = labels[edge_a], labels[edge_b]
    crossing = la != lb
    lo, hi = np.minimum(la[crossing], lb[crossing]), np.maximum(la[crossing], lb[crossing])
    upper = scipy.sparse.coo_matrix((np.ones(len(lo)), (lo, hi)), shape=(num_segments, num_segments)).tocsr()
    upper.sum_duplicates()
    return (upper + upper.T).tocsr()


def convex_borders(geometry: SegmentGeometry, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """LCCP convexity of each border (rows[k], cols[k]): True where the surface bends outwards."""
    normal = geometry.unit_normal
    direction = geometry.centroid[rows] - geometry.centroid[cols]
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    return np.einsum("ij,ij->i", normal[rows] - normal[cols], direction) > 0


def upper_pairs(matrix: scipy.sparse.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """``(pairs (E, 2) with i < j, values (E,))`` of a symmetric sparse matrix."""
    coo = matrix.tocoo()
    upper = coo.row < coo.col
    return np.stack([coo.row[upper], coo.col[upper]], axis=1).astype(np.int64), coo.data[upper].astype(np.float32)
