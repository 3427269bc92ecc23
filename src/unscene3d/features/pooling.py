"""Pool per-vertex features to segments: the per-segment input of the masked NCut."""

from __future__ import annotations

import numpy as np


def _neighbour_lists(adjacency: np.ndarray, num_segments: int) -> list[np.ndarray]:
    pairs = np.asarray(adjacency, dtype=np.int64).reshape(-1, 2)
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    splits = np.searchsorted(both[:, 0], np.arange(num_segments + 1))
    return [both[splits[i] : splits[i + 1], 1] for i in range(num_segments)]


def pool_segment_features(
    vertex_features: np.ndarray,
    labels: np.ndarray,
    num_segments: int,
    adjacency: np.ndarray,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Mean feature of each segment over its non-empty vertices, as UnScene3D aggregates them.

    Args:
        vertex_features: (N, C) features; a vertex is empty when its row is all zeros (the official
            convention: no 2D view saw it) or when ``valid`` says so.
        labels: (N,) compact segment index 0..S-1 per vertex.
        num_segments: S.
        adjacency: (E, 2) pairs of adjacent segments.
        valid: optional (N,) bool, vertices that have a feature.

    Returns:
        (S, C) float32. A segment without any non-empty vertex takes the mean of its neighbours that
        have one, or, when none has, the mean of all segments that have one (zeros if no segment has).
    """
    feats = np.asarray(vertex_features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if feats.ndim != 2 or len(feats) != len(labels):
        raise ValueError(f"vertex_features must be (N, C) with N = {len(labels)}, got {feats.shape}")
    has_feature = np.any(feats != 0, axis=1)
    if valid is not None:
        has_feature &= np.asarray(valid, dtype=bool)
    counts = np.bincount(labels[has_feature], minlength=num_segments).astype(np.float64)
    sums = np.zeros((num_segments, feats.shape[1]))
    np.add.at(sums, labels[has_feature], feats[has_feature])
    filled = counts > 0
    pooled = np.zeros_like(sums)
    pooled[filled] = sums[filled] / counts[filled, None]

    empty = np.flatnonzero(~filled)
    if len(empty):
        scene_mean = pooled[filled].mean(axis=0) if filled.any() else np.zeros(feats.shape[1])
        neighbours = _neighbour_lists(adjacency, num_segments)
        for segment in empty:
            around = neighbours[segment][filled[neighbours[segment]]]
            # only neighbours with their own feature count, so the order of filling does not matter
            pooled[segment] = pooled[around].mean(axis=0) if len(around) else scene_mean
    return pooled.astype(np.float32)
