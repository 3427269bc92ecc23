"""Mesh oversegmentation: Felzenszwalb graph segmentation, as the ScanNet Segmentator computes it.

The public C++ tool (ScanNet/Segmentator) smooths face normals into vertex normals, weights every
mesh edge by the difference of its vertex normals, sorts the edges with ``std::sort`` and runs the
Felzenszwalb-Huttenlocher union-find, then merges segments smaller than ``segMinVerts``. This module
reproduces it bit for bit on float32 data: same float32 arithmetic, same edge order (a port of the
libstdc++ introsort, because ``std::sort`` is not stable and the order of equal weights decides which
vertex becomes a segment's root id), same union-by-rank tie rule. On ScanNet scene0000_00 the segment
ids are identical to the C++ tool's output.

Two weightings are offered:

* ``"scannet"``: ``w = 1 - n_a.n_b``, squared when the edge is convex (ScanNet release files).
* ``"unscene3d"``: ``w = (1 - n_a.n_b) * L1(colour_a - colour_b)``, squared only when convex and the
  colour difference is below 0.05 (UnScene3D's pseudo-mask oversegmentation).

Segment ids follow the ScanNet convention (``seg_ids[v]`` is the root vertex id of v's segment);
:func:`compact_labels` turns them into 0..S-1 ordered by increasing root id, the mapping UnScene3D's
own binding uses.

The kernels run as compiled C (:mod:`unscene3d.native`) where the package's C extension was built at
install, else through numba (:mod:`unscene3d.oversegment_kernels`); the results are the same, but the C
path spares a command numba's start-up, most of a one-scan run (docs/benchmarks.md, "Start-up").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from unscene3d.errors import InputError

if TYPE_CHECKING:
    from types import ModuleType

    import scipy.sparse

logger = logging.getLogger(__name__)

VARIANTS = ("scannet", "unscene3d")
DEFAULT_PARAMS = {"scannet": (0.01, 20), "unscene3d": (0.005, 50)}
# UnScene3D squares the weight of a convex edge only when its colours are this close (L1, in [0,1]).
COLOUR_CONVEX_LIMIT = 0.05

# Largest contingency matrix (cells) that partition_agreement solves exactly (Hungarian method).
_HUNGARIAN_MAX_CELLS = 4_000_000


@dataclass(frozen=True)
class Segmentation:
    """Result of :func:`oversegment`.

    ``seg_ids``: (N,) int64, ScanNet convention (a segment's id is its root vertex id).
    ``labels``: (N,) int64 compact segment indices 0..S-1, ordered by increasing ``seg_ids`` value.
    ``adjacency``: (E,2) int64 unique pairs ``i < j`` of compact indices whose segments share a
    mesh edge, sorted.
    ``params``: ``{"kThresh", "segMinVerts", "variant"}``.
    """

    seg_ids: np.ndarray
    labels: np.ndarray
    adjacency: np.ndarray
    num_segments: int
    params: dict = field(default_factory=dict)

    def adjacency_matrix(self) -> scipy.sparse.csr_matrix:
        """Symmetric (S,S) 0/1 float64 matrix of segment adjacency (no self loops)."""
        return adjacency_matrix(self.adjacency, self.num_segments)


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def check_positions(positions: np.ndarray, source: object = None, *, what: str = "vertex") -> np.ndarray:
    """A non-empty numeric (N, 3) array without NaN/inf, else an :class:`InputError` about ``what`` (vertex,
    point) that names ``source``."""
    positions = np.asarray(positions)
    if positions.ndim != 2 or positions.shape[1] != 3 or positions.shape[0] == 0:
        raise InputError(source, f"{what} positions must be a non-empty (N, 3) array, got shape {positions.shape}")
    if not np.issubdtype(positions.dtype, np.number):
        raise InputError(source, f"{what} positions must be numeric, got dtype {positions.dtype}")
    finite = np.isfinite(positions).all(axis=1)
    if not finite.all():
        raise InputError(source, f"{what} {int(np.flatnonzero(~finite)[0])} has a NaN or infinite coordinate")
    return positions


def felzenszwalb_params(variant: str, k_thresh: float | None, min_verts: int | None) -> tuple[float, int]:
    """``(k_thresh, min_verts)`` with the variant's defaults filled in, checked."""
    if variant not in VARIANTS:
        raise InputError(None, f"unknown oversegmentation variant {variant!r}; use one of {VARIANTS}")
    default_k, default_min = DEFAULT_PARAMS[variant]
    k_thresh = default_k if k_thresh is None else k_thresh
    min_verts = default_min if min_verts is None else min_verts
    if not (np.isfinite(k_thresh) and k_thresh >= 0):
        raise InputError(None, f"k_thresh must be a finite number >= 0, got {k_thresh}")
    if int(min_verts) != min_verts or min_verts < 0:
        raise InputError(None, f"min_verts must be an integer >= 0, got {min_verts}")
    return float(k_thresh), int(min_verts)


def _check_mesh(vertices: np.ndarray, faces: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a triangle mesh; return float32 vertices and int32 faces as the C++ tool reads them."""
    vertices = check_positions(vertices)
    if vertices.shape[0] >= 2**31:
        raise InputError(None, f"too many vertices ({vertices.shape[0]}) for 32-bit vertex ids")
    if faces is None or np.size(faces) == 0:
        raise InputError(
            None, "oversegmentation needs a mesh with faces; this input has none (a point cloud: use "
            "unscene3d.oversegment_points.oversegment_scene)"
        )
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(None, f"faces must be an (F, 3) array of triangles, got shape {faces.shape}")
    if not np.issubdtype(faces.dtype, np.integer):
        raise InputError(None, f"faces must hold integer vertex indices, got dtype {faces.dtype}")
    lo, hi = int(faces.min()), int(faces.max())
    if lo < 0 or hi >= vertices.shape[0]:
        raise InputError(
            None, f"faces index vertices {lo}..{hi} but the mesh has {vertices.shape[0]} vertices"
        )
    return (
        np.ascontiguousarray(vertices, dtype=np.float32),
        np.ascontiguousarray(faces, dtype=np.int32),
    )


def _check_colors(colors: np.ndarray | None, num_vertices: int) -> np.ndarray:
    """Colours as float32 in [0, 1]: integer colours (0..255) are divided by 255."""
    if colors is None:
        raise InputError(None, 'variant "unscene3d" weights edges by colour; give per-vertex colors')
    colors = np.asarray(colors)
    if colors.shape != (num_vertices, 3):
        raise InputError(None, f"colors must have shape ({num_vertices}, 3), got {colors.shape}")
    if np.issubdtype(colors.dtype, np.integer):
        if colors.min() < 0 or colors.max() > 255:
            raise InputError(None, "integer colors must lie in 0..255")
        return colors.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(colors.dtype, np.floating) or not np.isfinite(colors).all():
        raise InputError(None, "colors must be uint8 0..255 or finite floats in [0, 1]")
    if colors.min() < 0.0 or colors.max() > 1.0:
        raise InputError(None, "float colors must lie in [0, 1] (pass uint8 for 0..255 colours)")
    return np.ascontiguousarray(colors, dtype=np.float32)


def _variant_colours(variant: str, colors: np.ndarray | None, num_vertices: int) -> np.ndarray | None:
    if variant not in VARIANTS:
        raise InputError(None, f"unknown oversegmentation variant {variant!r}; use one of {VARIANTS}")
    return _check_colors(colors, num_vertices) if variant == "unscene3d" else None


# ---------------------------------------------------------------------------------------------
# The kernels: compiled C where the extension was built, else numba (the same results)
# ---------------------------------------------------------------------------------------------


def _kernels() -> ModuleType:
    """:mod:`unscene3d.native` when its C library was built (no numba start-up), else
    :mod:`unscene3d.oversegment_kernels` (numba); both give the same segment ids."""
    from unscene3d import native

    if native.available():
        return native
    from unscene3d import oversegment_kernels

    return oversegment_kernels


def _graph(
    points: np.ndarray, faces: np.ndarray, colours01: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kernels = _kernels()
    normals = kernels.vertex_normals(points, faces)
    edge_a, edge_b = kernels.edge_endpoints(faces)
    weights = kernels.edge_weights(points, normals, colours01, edge_a, edge_b, COLOUR_CONVEX_LIMIT)
    return edge_a, edge_b, weights


def _std_sort_order(weights: np.ndarray, depth_limit: int | None = None) -> np.ndarray:
    """Permutation (int32) that libstdc++'s std::sort applies to records compared by weight only.

    ``depth_limit`` defaults to std::sort's ``2 * floor(log2(n))``; other values exist for tests.
    """
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    if depth_limit is None:
        depth_limit = 2 * (int(weights.shape[0]).bit_length() - 1) if weights.shape[0] else 0
    return _kernels().std_sort_order(weights, depth_limit)


def _adjacency_from_edges(labels: np.ndarray, edge_a: np.ndarray, edge_b: np.ndarray) -> np.ndarray:
    # Each edge between two different labels as lo * span + hi, duplicates removed.
    span = int(labels.max()) + 1
    la, lb = labels[edge_a], labels[edge_b]
    crossing = la != lb
    codes = np.sort(np.minimum(la[crossing], lb[crossing]) * span + np.maximum(la[crossing], lb[crossing]))
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    codes = codes[first]  # np.unique, without importing numpy.ma (milliseconds of start-up)
    return np.stack([codes // span, codes % span], axis=1)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def compute_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N,3) float32 vertex normals by the Segmentator's rule.

    Each face's unit normal ``cross(p2-p1, p3-p1)`` is blended into its three vertices by a running
    average (``n = lerp(n, face_n, 1/(count+1))``); the result is not renormalised, so a vertex
    on a crease has a normal shorter than 1. Vertices on no face (and faces of zero area, which
    carry no normal) get no contribution; a vertex with none keeps (0, 0, 0).
    """
    points, tris = _check_mesh(vertices, faces)
    return _kernels().vertex_normals(points, tris)


def _root_labels(seg_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """:func:`compact_labels` of union-find segment ids, without a sort: each id is a vertex that is its own
    root, so a segment's label is its root's rank among the roots."""
    is_root = seg_ids == np.arange(len(seg_ids))
    rank = np.cumsum(is_root) - 1
    return rank[seg_ids], int(is_root.sum())


def compact_labels(seg_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Map arbitrary segment ids to 0..S-1 by increasing id; returns ``(labels int64, S)``."""
    unique, labels = np.unique(np.asarray(seg_ids), return_inverse=True)
    return labels.astype(np.int64).reshape(-1), int(unique.shape[0])


def segment_adjacency(labels: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(E,2) int64 unique pairs ``i < j`` of labels (>= 0) that meet across a mesh edge, sorted."""
    labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
    faces = np.asarray(faces)
    if faces.size == 0 or labels.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    edge_a, edge_b = _kernels().edge_endpoints(np.ascontiguousarray(faces, dtype=np.int32).reshape(-1, 3))
    return _adjacency_from_edges(labels, edge_a, edge_b)


def adjacency_matrix(adjacency: np.ndarray, num_segments: int) -> scipy.sparse.csr_matrix:
    """Symmetric (S,S) 0/1 float64 CSR matrix from (E,2) pairs of segment indices."""
    import scipy.sparse  # on use: scipy adds a tenth of a second to every command's start-up

    pairs = np.asarray(adjacency, dtype=np.int64).reshape(-1, 2)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    matrix = scipy.sparse.coo_matrix(
        (np.ones(rows.shape[0]), (rows, cols)), shape=(num_segments, num_segments)
    ).tocsr()
    matrix.data[:] = 1.0  # a pair given twice would otherwise sum to 2
    return matrix


def oversegment(
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray | None = None,
    *,
    variant: str = "scannet",
    k_thresh: float | None = None,
    min_verts: int | None = None,
) -> Segmentation:
    """Oversegment a triangle mesh into surface patches (Felzenszwalb on the mesh graph).

    ``variant="scannet"`` reproduces the ScanNet Segmentator (defaults kThresh 0.01, segMinVerts 20);
    ``variant="unscene3d"`` adds UnScene3D's colour term (defaults 0.005, 50) and needs ``colors``
    (uint8 0..255 or floats in [0, 1]). Coordinates are used in float32 like the C++ tool.
    Raises :class:`InputError` for a mesh without faces, bad indices, NaN coordinates or colours.
    """
    points, tris = _check_mesh(vertices, faces)
    colours01 = _variant_colours(variant, colors, points.shape[0])
    k_thresh, min_verts = felzenszwalb_params(variant, k_thresh, min_verts)

    edge_a, edge_b, weights = _graph(points, tris, colours01)
    order = _std_sort_order(weights)
    seg_ids = _kernels().felzenszwalb(
        points.shape[0], edge_a, edge_b, weights, order, np.float32(k_thresh), int(min_verts)
    )
    labels, num_segments = _root_labels(seg_ids)
    adjacency = _adjacency_from_edges(labels, edge_a, edge_b)
    logger.debug("oversegmented %d vertices into %d segments", points.shape[0], num_segments)
    return Segmentation(
        seg_ids=seg_ids,
        labels=labels,
        adjacency=adjacency,
        num_segments=num_segments,
        params={"kThresh": float(k_thresh), "segMinVerts": int(min_verts), "variant": variant},
    )


def partition_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """How well two partitions of the same vertices agree, independent of their id values.

    Segments of ``a`` and ``b`` are matched one to one maximising the total overlap (Hungarian
    method, ``scipy.optimize.linear_sum_assignment``; above 4 million segment pairs a greedy
    matching by decreasing overlap is used instead). Returns ``(fraction of vertices whose segment
    in a is matched to their segment in b, segments in a, segments in b)``; 1.0 means the same
    partition.
    """
    import scipy.optimize
    import scipy.sparse

    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"partitions differ in length: {a.shape[0]} vs {b.shape[0]}")
    if a.shape[0] == 0:
        return 1.0, 0, 0
    labels_a, count_a = compact_labels(a)
    labels_b, count_b = compact_labels(b)
    overlap = scipy.sparse.coo_matrix(
        (np.ones(a.shape[0], dtype=np.int64), (labels_a, labels_b)), shape=(count_a, count_b)
    ).tocsr()
    if count_a * count_b <= _HUNGARIAN_MAX_CELLS:
        dense = overlap.toarray()
        rows, cols = scipy.optimize.linear_sum_assignment(dense, maximize=True)
        matched = int(dense[rows, cols].sum())
    else:
        matched = _greedy_matched_overlap(overlap.tocoo())
    return matched / a.shape[0], count_a, count_b


def _greedy_matched_overlap(overlap: scipy.sparse.coo_matrix) -> int:
    taken_rows = np.zeros(overlap.shape[0], dtype=bool)
    taken_cols = np.zeros(overlap.shape[1], dtype=bool)
    matched = 0
    for k in np.argsort(-overlap.data, kind="stable"):
        r, c = overlap.row[k], overlap.col[k]
        if not taken_rows[r] and not taken_cols[c]:
            taken_rows[r] = taken_cols[c] = True
            matched += int(overlap.data[k])
    return matched
