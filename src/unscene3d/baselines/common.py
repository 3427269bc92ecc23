"""Shared step of the baselines: turn a per-vertex partition into scored instance masks."""

from __future__ import annotations

import numpy as np

# The benchmark ignores predictions under 100 vertices, so such clusters are not worth writing out.
MIN_INSTANCE_VERTICES = 100


def partition_to_instances(
    labels: np.ndarray, *, min_vertices: int = MIN_INSTANCE_VERTICES
) -> tuple[np.ndarray, np.ndarray]:
    """Masks for every label with at least ``min_vertices`` vertices (label -1 = unassigned).

    Scores are each instance's share of the scene's vertices, so larger instances rank first: the
    partition carries no other confidence, and the paper's baselines rank segments by size too.
    Returns (masks (K, N) bool, scores (K,) float64) ordered by descending score.
    """
    labels = np.asarray(labels, dtype=np.int64)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    keep = counts >= min_vertices
    ids, counts = ids[keep], counts[keep]
    order = np.argsort(-counts, kind="stable")
    ids, counts = ids[order], counts[order]
    masks = labels[None, :] == ids[:, None]
    scores = counts / max(len(labels), 1)
    return masks, scores.astype(np.float64)
