"""Shared step of the baselines: turn a per-vertex partition into scored instance masks."""

from __future__ import annotations

import numpy as np

from unscene3d.instances import Instances

# The benchmark ignores predictions under 100 vertices, so such clusters are not worth writing out.
MIN_INSTANCE_VERTICES = 100


def partition_to_instances(labels: np.ndarray, *, min_vertices: int = MIN_INSTANCE_VERTICES) -> Instances:
    """Masks for every label with at least ``min_vertices`` vertices (label -1 = unassigned).

    Scores are each instance's share of the scene's vertices, so larger instances rank first: the
    partition carries no other confidence, and the paper's baselines rank segments by size too.
    The instances are in descending score order.
    """
    labels = np.asarray(labels, dtype=np.int64)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    keep = counts >= min_vertices
    ids, counts = ids[keep], counts[keep]
    return Instances(labels[None, :] == ids[:, None], counts / max(len(labels), 1)).sorted_by_score()
