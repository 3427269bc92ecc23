"""Masked normalized cuts over a segment graph: UnScene3D's initial pseudo masks.

Each iteration cuts the affinity graph of the segments in two with the normalized-cut relaxation
(the second-smallest generalized eigenvector of ``(D - W) v = lambda D v``), keeps the connected part
of the foreground that holds the seed, and masks those segments out before the next cut. Rules and
defaults follow the paper's official code (see :class:`NCutConfig`).

Masked segments. The official code zeroes their features and sets their rows and columns of ``W`` to
``eps``. Every masked row is then the same constant row, so in any eigenvector that is not
orthogonal to that structure all masked segments carry one common value ``c``. Lumping them into a
single node (weight ``|M| eps`` to each remaining segment, ``|M|^2 eps`` to itself, degree
``|M| S eps``) gives a problem of size ``|R| + 1`` whose eigenpairs are exactly the full problem's
eigenpairs that are constant on the masked segments, with the same ``D``-normalisation. The
second-smallest one is such a pair (the others have ``lambda = 1``), so the fast solver returns
the same vector as the full solve, in a fraction of the time; ``benchmarks/ncut_speed.py`` checks
that both give identical masks. The threshold ``v > mean(v)`` averages over all segments, masked
ones included, as the official code does; whether masked segments may rejoin a foreground is
:attr:`NCutConfig.masked_rejoin`.

Eigenvector sign. A solver returns ``v`` or ``-v`` at will, and the official rules (mean threshold,
flip rule, ``argmax`` seed) depend on it. We fix it so that the entry of largest magnitude is
positive (TokenCut/CutLER's convention), which makes results independent of the solver. Entries
equal in exact arithmetic (segments with identical rows of ``W``) are compared with a relative
tolerance of 1e-9, and the seed is the lowest-index maximum, for the same reason. When the second
eigenvalue itself is repeated (several equally good cuts, e.g. identical disjoint cliques) the
eigenvector is not unique and the cut depends on the solver, in the official code as here.

Departures from the official code, all documented on :class:`NCutConfig`: masked segments do not
rejoin a foreground by default (``masked_rejoin``); the flip fraction counts the remaining
segments (``flip_counts_masked``), as DESIGN.md states; the loop also stops when a cut would
repeat itself or the foreground among the remaining segments is empty (the official loop would
spend its remaining iterations on the same rejected cut), which changes no output.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg

log = logging.getLogger(__name__)

# Binarisation threshold per feature modality. Official: 0.55 for 3D features alone, 0.65 for 3D+2D
# (paper configs); 0.6 is the default of the official NCut script, used here for 2D alone and for
# the no-weights descriptors, which have no official value of their own.
DEFAULT_TAU = {"3d": 0.55, "both": 0.65, "2d": 0.6, "handcrafted": 0.6, "geometric": 0.6}
SOLVERS = ("fast", "reference")
# Fast solver: graphs up to this size are solved densely; Lanczos settings for larger ones.
_DENSE_SIZE = 64
_LANCZOS_TOL = 1e-12
_LANCZOS_NCV = 20
# Eigenvector entries closer than this (relative to the largest) count as equal.
_TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NCutConfig:
    """Constants of the masked NCut, with the official defaults.

    Attributes:
        tau: binarisation threshold on the min-max normalised affinity (``W = 1`` where ``A > tau``).
            See :data:`DEFAULT_TAU` for the per-modality defaults; 0.6 is the official script's.
        eps: weight of the non-edges and of every masked row/column of ``W`` (official 1e-5). Also the
            official's guard in the min-max normalisation, ``(A - min) / (max - min + eps)``.
        max_iterations: number of cuts (official ``max_number_of_instances`` = 20: the loop runs
            this many times and rejected cuts count too).
        flip_fraction: flip the partition (and ``v``) when the foreground holds more than this
            fraction of the segments (official ``max_extent_ratio`` = 0.8).
        flip_counts_masked: how that fraction is counted. False (default, DESIGN.md): foreground
            segments among the remaining ones over the number remaining. True: the official code's
            count, every foreground segment (masked ones included) over all segments.
        max_overlap: reject a mask when more than this fraction of its segments belong to earlier
            accepted masks (official 0.5).
        min_segments: reject a mask with fewer segments (official ``min_segment_size`` = 4).
        normalize_affinity: min-max normalise each modality's cosine similarity (official: on).
        masked_rejoin: let masked segments join a foreground (and the seed be one of them) when their
            shared eigenvector value passes the mean threshold, as the official code does. Off by
            default: the official outcome then hinges on the solver's arbitrary eigenvector sign,
            and with a fixed sign masked segments rejoin systematically and the loop stalls on
            rejected overlapping cuts (seen on synthetic scenes). With it off, masks never overlap
            earlier ones and the overlap rule is a guard only.
        isolate_masked: cut only the graph of the remaining segments, leaving the masked ones out of
            the eigenproblem instead of coupling them to everything with ``eps`` (official: coupled).
            Coupled, once few segments remain the cheapest cut separates the masked block from the
            rest (its normalized cut is about ``|R| / S``), the foreground among the remaining
            segments comes out empty, and the loop stops early: with weak features it can stop
            after two masks (see ``benchmarks/pseudo_masks_scannet.py --isolate-masked``). Not
            official; with it both solvers solve the remaining block only.
        solver: ``"fast"`` (lumped masked segments, Lanczos on the normalised matrix with a dense
            fallback) or ``"reference"`` (the official ``scipy.linalg.eigh(D - W, D)`` on the full
            matrix). Both give the same masks.
    """

    tau: float = 0.6
    eps: float = 1e-5
    max_iterations: int = 20
    flip_fraction: float = 0.8
    flip_counts_masked: bool = False
    max_overlap: float = 0.5
    min_segments: int = 4
    normalize_affinity: bool = True
    masked_rejoin: bool = False
    isolate_masked: bool = False
    solver: str = "fast"

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {self.eps}")
        if self.max_iterations < 0 or self.min_segments < 1:
            raise ValueError("max_iterations must be >= 0 and min_segments >= 1")


@dataclass
class NCutResult:
    """Masks over segments, in the order they were found.

    ``masks``: (K, S) bool, accepted masks (each without the segments of earlier masks, as the
    official code stores them). ``eigenvalues``: (K,) the cut's ``lambda`` for each mask.
    ``iterations``: number of cuts made (accepted or rejected). ``rejected``: cuts rejected.
    """

    masks: np.ndarray
    eigenvalues: np.ndarray
    iterations: int = 0
    rejected: int = 0
    log: list[str] = field(default_factory=list)

    def scores(self) -> np.ndarray:
        """Score by discovery order: ``(K - i) / K`` for the i-th mask (first found = 1)."""
        k = len(self.masks)
        return (k - np.arange(k, dtype=np.float64)) / max(k, 1)


def cosine_similarity(features: np.ndarray) -> np.ndarray:
    """(S, S) cosine similarity of the rows of ``features``; a zero row has similarity 0 with all."""
    feats = np.asarray(features, dtype=np.float64)
    unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def normalize_affinity(similarity: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Min-max normalisation as the official code does it: ``(A - min) / (max - min + eps)``."""
    if not similarity.size:
        return similarity.copy()
    shifted = similarity - similarity.min()
    shifted /= shifted.max() + eps
    return shifted


def combined_affinity(
    similarities: Sequence[np.ndarray], rows: np.ndarray | None = None, eps: float = 1e-5, normalize: bool = True
) -> np.ndarray:
    """Average over modalities of the normalised similarity among ``rows`` (default: all segments)."""
    total = None
    for similarity in similarities:
        block = similarity if rows is None else similarity[np.ix_(rows, rows)]
        block = normalize_affinity(block, eps) if normalize else block.copy()
        total = block if total is None else total + block
    return total / len(similarities)


# ---------------------------------------------------------------------------------------------
# Eigen solvers: the second-smallest generalized eigenvector over all S segments
# ---------------------------------------------------------------------------------------------


def _canonical_sign(v: np.ndarray) -> np.ndarray:
    return -v if v[np.argmax(np.abs(v))] < 0 else v


def _reference_vector(edges: np.ndarray, remaining: np.ndarray, eps: float) -> tuple[np.ndarray, float]:
    """Official-style: build the full (S, S) ``W`` and solve ``(D - W) v = lambda D v`` densely."""
    num_segments = len(remaining)
    weights = np.full((num_segments, num_segments), eps)
    rows = np.flatnonzero(remaining)
    weights[np.ix_(rows, rows)] = np.where(edges, 1.0, eps)
    degree = np.diag(weights.sum(axis=1))
    values, vectors = scipy.linalg.eigh(degree - weights, degree, subset_by_index=[1, 2])
    if len(values) == 0:  # LAPACK's subset driver gave up on clustered eigenvalues
        values, vectors = scipy.linalg.eigh(degree - weights, degree)
        values, vectors = values[1:], vectors[:, 1:]
    return _canonical_sign(vectors[:, 0]), float(values[0])


def _dense_second_largest(matrix: np.ndarray) -> tuple[float, np.ndarray]:
    # full decomposition: LAPACK's index-subset drivers can return nothing on clustered eigenvalues
    values, vectors = np.linalg.eigh(matrix)
    return float(values[-2]), vectors[:, -2]


def _fast_vector(edges: np.ndarray, remaining: np.ndarray, eps: float) -> tuple[np.ndarray, float]:
    """Same vector as :func:`_reference_vector`, from the lumped problem in normalised form.

    Lumped, ``W = eps m m^T + (1 - eps) B`` with ``m = (1, ..., 1, |M|)`` and ``B`` the binary
    edges padded with a zero row/column for the masked node, so ``W x`` costs one binary
    matrix-vector product. ``N = D^-1/2 W D^-1/2`` has the known top eigenvector ``D^1/2 1``
    (eigenvalue 1); with it deflated, Lanczos finds the largest eigenvalue ``mu`` of the rest:
    ``lambda = 1 - mu`` and ``v = D^-1/2 u``.
    """
    num_remaining = len(edges)
    num_masked = len(remaining) - num_remaining
    size = num_remaining + (1 if num_masked else 0)
    binary = np.zeros((size, size))
    binary[:num_remaining, :num_remaining] = edges
    weight_of = np.ones(size)
    if num_masked:
        weight_of[-1] = num_masked
    degree = eps * weight_of * weight_of.sum() + (1 - eps) * binary.sum(axis=1)
    scale = 1.0 / np.sqrt(degree)
    scaled_weight = scale * weight_of
    top = np.sqrt(degree) / np.linalg.norm(np.sqrt(degree))

    def dense() -> np.ndarray:
        return eps * np.outer(scaled_weight, scaled_weight) + (1 - eps) * binary * np.outer(scale, scale)

    def normalised_product(x: np.ndarray) -> np.ndarray:
        y = scale * x
        return scale * ((1 - eps) * (binary @ y)) + scaled_weight * (eps * (scaled_weight @ x))

    if size <= _DENSE_SIZE:
        mu, u = _dense_second_largest(dense())
    else:
        deflated = scipy.sparse.linalg.LinearOperator(
            (size, size), matvec=lambda x: normalised_product(x) - top * (top @ x), dtype=np.float64
        )
        # a fixed start vector keeps results reproducible; Lanczos needs one not orthogonal to the answer
        start = np.random.default_rng(0).standard_normal(size)
        try:
            values, vectors = scipy.sparse.linalg.eigsh(
                deflated, k=1, which="LA", v0=start, tol=_LANCZOS_TOL, ncv=min(_LANCZOS_NCV, size - 1)
            )
            mu, u = values[0], vectors[:, 0]
        except scipy.sparse.linalg.ArpackNoConvergence:
            log.debug("Lanczos did not converge on %d segments; dense solve", size)
            mu, u = _dense_second_largest(dense())
    v_lumped = u * scale
    full = np.empty(len(remaining))
    full[remaining] = v_lumped[:num_remaining]
    if num_masked:
        # the lumped node carries the value that every masked segment shares
        full[~remaining] = v_lumped[-1]
    return _canonical_sign(full), float(1.0 - mu)


# ---------------------------------------------------------------------------------------------
# The masked NCut loop
# ---------------------------------------------------------------------------------------------


def _as_modalities(features: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(features, np.ndarray):
        return [features]
    return [np.asarray(f) for f in features]


def _adjacency(adjacency: np.ndarray | scipy.sparse.spmatrix, num_segments: int) -> scipy.sparse.csr_matrix:
    if scipy.sparse.issparse(adjacency):
        matrix = scipy.sparse.csr_matrix(adjacency)
    else:
        pairs = np.asarray(adjacency, dtype=np.int64).reshape(-1, 2)
        if len(pairs) and (pairs.min() < 0 or pairs.max() >= num_segments):
            raise ValueError(f"adjacency pairs must index {num_segments} segments")
        ones = np.ones(len(pairs))
        matrix = scipy.sparse.coo_matrix((ones, (pairs[:, 0], pairs[:, 1])), shape=(num_segments,) * 2).tocsr()
    matrix = ((matrix + matrix.T) > 0).astype(np.int8)  # symmetric, whatever order pairs came in
    if matrix.shape != (num_segments, num_segments):
        raise ValueError(f"adjacency must be ({num_segments}, {num_segments}), got {matrix.shape}")
    return matrix


def _seed_component(adjacency: scipy.sparse.csr_matrix, foreground: np.ndarray, seed: int) -> np.ndarray:
    """Boolean mask of the foreground segments connected to ``seed`` through foreground segments."""
    members = np.flatnonzero(foreground)
    sub = adjacency[members][:, members]
    _, labels = scipy.sparse.csgraph.connected_components(sub, directed=False)
    local_seed = int(np.searchsorted(members, seed))
    component = np.zeros(len(foreground), dtype=bool)
    component[members[labels == labels[local_seed]]] = True
    return component


def rejection_reason(component: np.ndarray, accepted: np.ndarray, config: NCutConfig) -> str:
    """Why a cut's mask (bool over segments) is rejected, or '' when it is accepted."""
    size = int(component.sum())
    overlap = (component & accepted).sum() / max(size, 1)
    if overlap > config.max_overlap:
        return f"{overlap:.2f} of it overlaps earlier masks"
    if size < config.min_segments:
        return f"only {size} segments"
    return ""


def masked_ncut(
    features: np.ndarray | Sequence[np.ndarray],
    adjacency: np.ndarray | scipy.sparse.spmatrix,
    config: NCutConfig | None = None,
    excluded: np.ndarray | None = None,
) -> NCutResult:
    """Iterative masked normalized cut over segments.

    Args:
        features: (S, C) segment features, or a sequence of them (one per modality; their affinities
            are averaged).
        adjacency: (E, 2) pairs of adjacent segment indices (any order) or an (S, S) sparse matrix.
        config: constants (official defaults).
        excluded: optional (S,) bool, segments masked out before the first cut, as if an earlier
            cut had taken them (e.g. the floor, walls and ceiling; not official). They never join a
            mask and do not count as earlier masks for the overlap rule.
    """
    config = config or NCutConfig()
    modalities = _as_modalities(features)
    num_segments = len(modalities[0])
    if any(m.ndim != 2 or len(m) != num_segments for m in modalities):
        raise ValueError("every feature modality must be an (S, C) array with the same S")
    graph = _adjacency(adjacency, num_segments)

    similarities = [cosine_similarity(m) for m in modalities]
    allowed = np.ones(num_segments, dtype=bool) if excluded is None else ~np.asarray(excluded, dtype=bool)
    masked = ~allowed  # official "painting": every segment cut so far
    accepted = np.zeros(num_segments, dtype=bool)  # segments of accepted masks
    masks: list[np.ndarray] = []
    eigenvalues: list[float] = []
    result = NCutResult(np.zeros((0, num_segments), dtype=bool), np.zeros(0))

    for iteration in range(config.max_iterations):
        remaining = ~masked
        if remaining.sum() < config.min_segments:
            break  # no mask of at least min_segments segments can come out any more
        rows = np.flatnonzero(remaining)
        # zeroed features of masked segments would only add zeros: normalise over the remaining block
        block = None if len(rows) == num_segments else rows
        affinity = combined_affinity(similarities, block, config.eps, config.normalize_affinity)
        edges = affinity > config.tau
        solve = _reference_vector if config.solver == "reference" else _fast_vector
        if config.isolate_masked:
            v_remaining, eigenvalue = solve(edges, np.ones(len(rows), dtype=bool), config.eps)
            v = np.zeros(num_segments)
            v[rows] = v_remaining - v_remaining.mean()  # masked segments sit exactly at the mean
        else:
            v, eigenvalue = solve(edges, remaining, config.eps)
        result.iterations = iteration + 1

        # Values equal in exact arithmetic (segments with identical rows of W) differ by rounding
        # noise; comparing with a tolerance makes the threshold and seed independent of the solver.
        tolerance = _TIE_TOLERANCE * np.abs(v).max()
        above = v > v.mean() + tolerance  # the mean over all segments, masked ones included (official)
        if config.flip_counts_masked:
            fraction = above.sum() / num_segments
        else:
            fraction = above[remaining].sum() / len(rows)
        if fraction > config.flip_fraction:
            above, v = v < v.mean() - tolerance, -v
        rejoin = config.masked_rejoin and not config.isolate_masked
        foreground = (above & allowed) if rejoin else above & remaining
        candidates = np.flatnonzero(allowed) if rejoin else rows
        candidate_values = v[candidates]
        seed = int(candidates[np.flatnonzero(candidate_values >= candidate_values.max() - tolerance)[0]])
        if not foreground[seed]:
            result.log.append(f"cut {iteration}: empty foreground, stop")
            break
        component = _seed_component(graph, foreground, seed)

        reason = rejection_reason(component, accepted, config)
        if reason:
            result.log.append(f"cut {iteration}: rejected, {reason}")
            result.rejected += 1
        else:
            masks.append(component & ~accepted)
            eigenvalues.append(eigenvalue)
            accepted |= component
            result.log.append(f"cut {iteration}: accepted {component.sum()} segments, lambda {eigenvalue:.4g}")
        if not (component & remaining).any():
            result.log.append(f"cut {iteration}: nothing new masked, the next cut would repeat it; stop")
            break
        masked |= component
    if masks:
        result.masks = np.stack(masks)
        result.eigenvalues = np.asarray(eigenvalues)
    log.debug("masked NCut: %d masks from %d cuts", len(masks), result.iterations)
    return result
