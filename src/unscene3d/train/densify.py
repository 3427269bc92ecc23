"""Mask densification between self-training rounds (UnScene3D).

After a round, the model's predictions on a training scan are filtered and a few confident new ones are
added to that scan's pseudo masks for the next round:

1. keep predictions with score >= ``min_score``;
2. greedy non-maximum suppression in score order: a prediction ``j`` is suppressed when a kept
   higher-scoring prediction ``i`` covers more than ``nms_overlap`` of it, ``|i ∩ j| / |j|``;
3. in score order, up to ``max_added`` survivors are added, each only if more than
   ``min_uncovered_fraction`` of it is not yet covered by the initial pseudo masks and the masks added
   before it, and only its uncovered part is added.

The initial pseudo masks are always kept unchanged. Masks are over any units (vertices or segments), the
same units for the predictions and the pseudo masks; the pseudo masks are a plain (P, N) array, since only
what they cover counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unscene3d.errors import InputError
from unscene3d.instances import Instances


@dataclass(frozen=True)
class DensifyConfig:
    """Constants of the densification step (values of the UnScene3D paper / official code)."""

    min_score: float = 0.1  # predictions below this score are ignored
    nms_overlap: float = 0.66  # suppress j when |i ∩ j| / |j| exceeds this for a better-scored kept i
    max_added: int = 5  # new masks per scan per round
    min_uncovered_fraction: float = 0.5  # a mask is added only if more than this part of it is new
    # Not in the paper: the segment model's learned segment features also re-cut the scan (the spatial cut
    # of the pseudo-mask stage on those features) and up to this many of its masks are added, by the same
    # rule, after the model's own (train.selftrain.densify_training_scan). 0 = off (official).
    recut_masks: int = 0


def _check_masks(masks: np.ndarray, name: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 2:
        raise InputError(None, f"{name} must be a (K, N) array of masks, got shape {masks.shape}")
    return masks.astype(bool, copy=False)


def greedy_nms(masks: np.ndarray, scores: np.ndarray, overlap: float) -> np.ndarray:
    """Indices of the masks kept by greedy NMS in descending score order; ``j`` is suppressed by a kept
    ``i`` when ``|i ∩ j| / |j| > overlap``. Empty masks are dropped."""
    masks = _check_masks(masks, "masks")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    sizes = masks.sum(1)
    kept: list[int] = []
    for j in order:
        if sizes[j] == 0:
            continue
        if kept:
            intersections = (masks[kept] & masks[j]).sum(1)
            if (intersections / sizes[j] > overlap).any():
                continue
        kept.append(int(j))
    return np.asarray(kept, dtype=np.int64)


def densify_scan(pseudo_masks: np.ndarray, predictions: Instances, config: DensifyConfig | None = None) -> Instances:
    """New masks for one scan from its pseudo masks (P, N) and the model's predictions over the same N units:
    the uncovered parts that were added, each with the score of the prediction it came from and, in the field
    ``source``, that prediction's index."""
    config = config or DensifyConfig()
    pseudo_masks = _check_masks(pseudo_masks, "pseudo masks")
    num_units, scores = predictions.num_units, predictions.scores
    if pseudo_masks.shape[0] and pseudo_masks.shape[1] != num_units:
        raise InputError(None, f"pseudo masks cover {pseudo_masks.shape[1]} units, predictions {num_units}")

    confident = np.flatnonzero(scores >= config.min_score)
    survivors = confident[greedy_nms(predictions.masks[confident], scores[confident], config.nms_overlap)]

    covered = pseudo_masks.any(0) if pseudo_masks.shape[0] else np.zeros(num_units, dtype=bool)
    added, source = [], []
    for index in survivors:  # already in descending score order
        if len(added) == config.max_added:
            break
        mask = predictions.masks[index]
        uncovered = mask & ~covered
        if uncovered.sum() > config.min_uncovered_fraction * mask.sum():
            added.append(uncovered)
            source.append(int(index))
            covered |= uncovered
    source_array = np.asarray(source, dtype=np.int64)
    return Instances(np.stack(added) if added else np.zeros((0, num_units), dtype=bool), scores[source_array],
                     source=source_array)
