"""Spatial cuts: recursive normalized cuts of the segment graph, scored and selected as masks.

The official loop cuts one fully connected graph again and again; here the graph only links touching
segments (:mod:`unscene3d.pseudo.graph`), so with the floor, walls and ceiling left out it falls
apart into connected components: furniture groups standing free. Each component is cut in two by
the normalized cut (Shi and Malik: the second generalized eigenvector of ``(D - W) v = lambda D v``,
split at the threshold, among 19 quantiles of ``v``, with the lowest NCut value), each part's
connected pieces are cut again, and so on while a cut is cheaper than ``max_ncut``. Every node of
this tree is a candidate mask.

A candidate's score estimates how much it looks like one object (Table and ablation in
docs/benchmarks.md, "Pseudo masks"):

``score = (1 - separation)^2 * sqrt(0.05 + min(cohesion, 1)) * log(1 + area) * size_prior``

- separation: the NCut value of the cut that made the node (0 for a whole component): a mask that
  came off cheaply is well separated from its surroundings;
- cohesion: the NCut value of the node's own best cut (a single segment cannot be cut: 1): an
  object holds together, a group of objects splits cheaply;
- area (square metres): large masks are more often whole objects than fragments;
- size_prior: ``exp(-max(e - 1.2, 0)^2 / 2 * 0.3^2)`` of the standard deviation ``e`` along the
  mask's main axis: above 1.2 m (about 4 m long) a mask is usually leftover structure, not furniture.

Masks are then taken greedily by score, skipping any that overlaps a mask already taken, until
``max_masks``. These settings were chosen on synthetic rooms 10-19 and checked on rooms 0-9 and the
real scene (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg

from unscene3d.segments.geometry import SegmentGeometry

# Graphs up to this many segments are solved densely; larger ones with shift-invert Lanczos at _SHIFT.
_DENSE_SIZE = 1000
_SHIFT = -1e-3
_SPLIT_QUANTILES = np.linspace(0.05, 0.95, 19)


@dataclass(frozen=True)
class CutConfig:
    """Constants of the spatial cuts and of the mask selection."""

    max_ncut: float = 1.0
    max_masks: int = 20
    min_vertices: int = 100  # the ScanNet benchmark ignores smaller masks
    separation_power: float = 2.0
    cohesion_power: float = 0.5
    cohesion_floor: float = 0.05
    max_main_extent: float = 1.2  # metres (standard deviation along the main axis)
    extent_softness: float = 0.3


@dataclass(frozen=True)
class Candidate:
    """A node of the cut tree: its segments, how cheaply it was cut off, how well it holds together."""

    segments: np.ndarray
    separation: float
    cohesion: float


def _dense_fiedler(weights: np.ndarray | scipy.sparse.spmatrix) -> np.ndarray:
    dense = weights.toarray() if scipy.sparse.issparse(weights) else np.asarray(weights)
    degree = np.diag(dense.sum(axis=1))
    _, vectors = scipy.linalg.eigh(degree - dense, degree, subset_by_index=[1, 1])
    return vectors[:, 0]


def fiedler_vector(weights: np.ndarray | scipy.sparse.spmatrix) -> np.ndarray:
    """Second generalized eigenvector of ``(D - W) v = lambda D v`` of a connected graph.

    Large graphs: the two smallest eigenvectors of the normalised Laplacian
    ``I - D^-1/2 W D^-1/2`` by shift-invert Lanczos just below 0; when parts of the graph hang by
    near-zero edges the low end of the spectrum is so clustered that Lanczos can fail to converge,
    and the dense solver takes over."""
    size = weights.shape[0]
    if size <= _DENSE_SIZE:
        return _dense_fiedler(weights)
    sparse = scipy.sparse.csr_matrix(weights)
    degree = np.asarray(sparse.sum(axis=1)).ravel()
    scale = scipy.sparse.diags(1.0 / np.sqrt(degree))
    laplacian = (scipy.sparse.identity(size) - scale @ sparse @ scale).tocsc()
    start = np.random.default_rng(0).standard_normal(size)  # a fixed start keeps results reproducible
    try:
        _, vectors = scipy.sparse.linalg.eigsh(laplacian, k=2, sigma=_SHIFT, which="LM", v0=start)
    except scipy.sparse.linalg.ArpackNoConvergence:
        return _dense_fiedler(sparse)
    return vectors[:, 1] / np.sqrt(degree)  # shift-invert returns them by increasing eigenvalue


def best_bisection(weights: np.ndarray | scipy.sparse.spmatrix) -> tuple[float, np.ndarray | None]:
    """The lowest-NCut split of a connected graph along its Fiedler vector: ``(ncut, side)``.

    ``ncut = cut / vol(A) + cut / vol(B)``; ``side`` is None when the graph cannot be split."""
    size = weights.shape[0]
    if size < 2:
        return float("inf"), None
    matrix = scipy.sparse.csr_matrix(weights)
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    vector = fiedler_vector(matrix)
    sides = vector[:, None] > np.unique(np.quantile(vector, _SPLIT_QUANTILES))[None]
    sides = sides[:, sides.any(axis=0) & ~sides.all(axis=0)]
    if sides.shape[1] == 0:
        return float("inf"), None
    # every threshold's cut at once: the weight from each side to the rest
    cut = (sides * np.asarray(matrix @ ~sides)).sum(axis=0)
    inside = degree @ sides
    values = cut / inside + cut / (degree.sum() - inside)
    best = int(np.argmin(values))
    return float(values[best]), sides[:, best]


def _components(weights: scipy.sparse.csr_matrix, nodes: np.ndarray) -> list[np.ndarray]:
    count, labels = scipy.sparse.csgraph.connected_components(weights[nodes][:, nodes], directed=False)
    return [nodes[labels == k] for k in range(count)]


def cut_tree(weights: scipy.sparse.csr_matrix, active: np.ndarray, config: CutConfig | None = None) -> list[Candidate]:
    """Every node of the recursive cut of the ``active`` segments' graph (module docstring)."""
    config = config or CutConfig()
    weights = scipy.sparse.csr_matrix(weights)
    stack = [(nodes, 0.0) for nodes in _components(weights, np.flatnonzero(active))]
    candidates = []
    while stack:
        nodes, separation = stack.pop()
        cohesion, side = best_bisection(weights[nodes][:, nodes])
        candidates.append(Candidate(nodes, separation, cohesion))
        if side is None or cohesion > config.max_ncut:
            continue
        for part in (nodes[side], nodes[~side]):
            stack.extend((piece, cohesion) for piece in _components(weights, part))
    return candidates


def objectness(candidates: list[Candidate], geometry: SegmentGeometry, config: CutConfig | None = None) -> np.ndarray:
    """Score of each candidate (formula in the module docstring)."""
    config = config or CutConfig()
    scores = np.zeros(len(candidates))
    for k, candidate in enumerate(candidates):
        segments = candidate.segments
        area = geometry.area[segments]
        total = area.sum()
        centroid = (area[:, None] * geometry.centroid[segments]).sum(axis=0) / max(total, 1e-12)
        # the mask's covariance from its segments' own covariances and centroids (parallel axis rule)
        offsets = geometry.centroid[segments] - centroid
        own = np.einsum("sij,sj,skj->sik", geometry.axes[segments], geometry.eigenvalues[segments],
                        geometry.axes[segments])
        covariance = (area[:, None, None] * (own + offsets[:, :, None] * offsets[:, None, :])).sum(axis=0)
        main_extent = np.sqrt(max(np.linalg.eigvalsh(covariance / max(total, 1e-12))[-1], 0.0))
        size_prior = np.exp(-0.5 * (max(main_extent - config.max_main_extent, 0.0) / config.extent_softness) ** 2)
        cohesion = min(candidate.cohesion, 1.0)
        scores[k] = ((1.0 - min(candidate.separation, 1.0)) ** config.separation_power
                     * (config.cohesion_floor + cohesion) ** config.cohesion_power
                     * np.log1p(total) * size_prior)
    return scores


def select_masks(
    candidates: list[Candidate], scores: np.ndarray, segment_sizes: np.ndarray, config: CutConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy non-overlapping selection by score: ``(masks (K, S) bool, scores (K,))``."""
    config = config or CutConfig()
    num_segments = len(segment_sizes)
    taken = np.zeros(num_segments, dtype=bool)
    masks, kept = [], []
    for k in np.argsort(-scores, kind="stable"):
        segments = candidates[k].segments
        if segment_sizes[segments].sum() < config.min_vertices or taken[segments].any() or scores[k] <= 0:
            continue
        mask = np.zeros(num_segments, dtype=bool)
        mask[segments] = True
        masks.append(mask)
        kept.append(scores[k])
        taken |= mask
        if len(masks) == config.max_masks:
            break
    if not masks:
        return np.zeros((0, num_segments), dtype=bool), np.zeros(0)
    return np.stack(masks), np.asarray(kept)
