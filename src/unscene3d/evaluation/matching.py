"""Per-scene matching of predicted masks to ground-truth instances, by the ScanNet benchmark rules.

Class-agnostic: every ground-truth instance that the protocol counts (by its label, ``id // 1000``) is
one foreground class; every other vertex is void; every prediction is foreground whatever its label.
Protocols: ``scannet`` counts the 18 benchmark classes (the default); ``class-agnostic`` counts every
instance but wall, floor and ceiling (ScanNet200-style); ``all`` counts every instance (for data with
instance ids but no classes).

Per IoU threshold, one scene yields the benchmark's raw material for the precision/recall curve:
scored examples (1 = true positive, 0 = false positive) and the number of missed ground truth
instances ("hard false negatives"). Rules, as in ScanNet's ``evaluate_semantic_instance.py``:

- predictions and ground truth instances under ``min_region_size`` vertices are left out; the small
  ground truth instances still exist, and a prediction on them is excused (below);
- ground truth instances are visited in increasing id order, each one's candidate predictions in
  their input order; a candidate overlaps with IoU strictly above the threshold and has not already
  been assigned to an earlier instance. The first candidate is assigned; every later one is a false
  positive scored with the lower of the two scores, and the instance keeps the higher score;
- a prediction with IoU above the threshold with any instance (small ones included) is never
  counted as a false positive by itself; otherwise it is a false positive unless the fraction of
  its vertices on void or on small instances exceeds the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unscene3d.protocols import Protocol

MIN_REGION_SIZE = 100
# IoU thresholds of the benchmark: 0.50:0.95:0.05 (exactly as np.arange gives them) for AP, then 0.25.
AP_THRESHOLDS: tuple[float, ...] = tuple(np.arange(0.5, 0.95, 0.05).tolist())
AP25_THRESHOLD = 0.25
ALL_THRESHOLDS: tuple[float, ...] = AP_THRESHOLDS + (AP25_THRESHOLD,)

# Predictions counted at once, to bound the memory of the per-vertex index arrays.
_MASK_CHUNK = 256


@dataclass(frozen=True)
class ThresholdMatches:
    """One scene at one IoU threshold: scored examples and missed ground truth."""

    is_true: np.ndarray  # (E,) float64, 1 = true positive, 0 = false positive
    scores: np.ndarray  # (E,) float64
    hard_false_negatives: int


@dataclass(frozen=True)
class SceneMatches:
    """One scene's matches at every threshold of ``ALL_THRESHOLDS`` (same order)."""

    has_gt: bool  # at least one ground-truth instance counts
    has_pred: bool  # at least one prediction is large enough to count
    per_threshold: tuple[ThresholdMatches, ...]


@dataclass(frozen=True)
class _Overlaps:
    pred_sizes: np.ndarray  # (K,) vertices per kept prediction
    pred_scores: np.ndarray  # (K,)
    gt_sizes: np.ndarray  # (G,) vertices per foreground ground-truth instance, increasing id order
    gt_is_counted: np.ndarray  # (G,) bool: at least min_region_size vertices
    intersections: np.ndarray  # (K, G) shared vertices
    void_intersections: np.ndarray  # (K,) vertices on void


def _overlaps(
    masks: np.ndarray, scores: np.ndarray, gt: np.ndarray, protocol: Protocol, min_region_size: int
) -> _Overlaps:
    instance_ids, vertex_to_instance, gt_sizes = np.unique(gt, return_inverse=True, return_counts=True)
    is_foreground = (instance_ids != 0) & protocol.counts(instance_ids // 1000)
    # One column per foreground instance (increasing id), then one shared column for void.
    num_foreground = int(is_foreground.sum())
    num_columns = num_foreground + 1
    column_of_instance = np.full(len(instance_ids), num_foreground, dtype=np.int64)
    column_of_instance[is_foreground] = np.arange(num_foreground)
    vertex_column = column_of_instance[vertex_to_instance.reshape(-1)]

    pred_sizes = masks.sum(axis=1)
    kept = pred_sizes >= min_region_size
    kept_masks = masks[kept]
    # Count (prediction, column) pairs of every masked vertex; chunked to bound the index arrays.
    counts = np.zeros((len(kept_masks), num_columns), dtype=np.int64)
    for start in range(0, len(kept_masks), _MASK_CHUNK):
        chunk = kept_masks[start : start + _MASK_CHUNK]
        rows, vertices = np.nonzero(chunk)
        pair_counts = np.bincount(rows * num_columns + vertex_column[vertices], minlength=len(chunk) * num_columns)
        counts[start : start + len(chunk)] = pair_counts.reshape(len(chunk), num_columns)

    foreground_sizes = gt_sizes[is_foreground]
    return _Overlaps(
        pred_sizes=pred_sizes[kept],
        pred_scores=scores[kept],
        gt_sizes=foreground_sizes,
        gt_is_counted=foreground_sizes >= min_region_size,
        intersections=counts[:, :num_foreground],
        void_intersections=counts[:, num_foreground],
    )


def _match_at(overlaps: _Overlaps, iou: np.ndarray, threshold: float) -> ThresholdMatches:
    above = iou > threshold  # (K, G)
    counted_gt = np.flatnonzero(overlaps.gt_is_counted)
    scores = overlaps.pred_scores

    assigned = np.zeros(len(scores), dtype=bool)
    gt_score = np.full(len(counted_gt), -np.inf)
    gt_matched = np.zeros(len(counted_gt), dtype=bool)
    duplicate_scores: list[float] = []
    # Sequential on purpose: the benchmark's greedy assignment depends on the visiting order.
    for slot, gt_index in enumerate(counted_gt):
        for pred_index in np.flatnonzero(above[:, gt_index]):
            if assigned[pred_index]:
                continue
            score = float(scores[pred_index])
            if gt_matched[slot]:
                duplicate_scores.append(min(gt_score[slot], score))
                gt_score[slot] = max(gt_score[slot], score)
            else:
                gt_matched[slot] = True
                gt_score[slot] = score
                assigned[pred_index] = True

    # Above the threshold with some instance, a prediction is a match, a duplicate (both counted in the
    # loop above) or lies on a small instance (excused); only the others can be false positives.
    unmatched = ~above.any(axis=1)
    small_gt = ~overlaps.gt_is_counted
    ignored = overlaps.void_intersections + overlaps.intersections[:, small_gt].sum(axis=1)
    ignored_fraction = ignored / overlaps.pred_sizes  # sizes >= min_region_size >= 1
    false_positive = unmatched & (ignored_fraction <= threshold)

    is_true = np.concatenate(
        [np.ones(int(gt_matched.sum())), np.zeros(len(duplicate_scores) + int(false_positive.sum()))]
    )
    example_scores = np.concatenate([gt_score[gt_matched], duplicate_scores, scores[false_positive]])
    return ThresholdMatches(
        is_true=is_true,
        scores=example_scores.astype(np.float64),
        hard_false_negatives=int((~gt_matched).sum()),
    )


def match_scene(
    masks: np.ndarray,
    scores: np.ndarray,
    gt: np.ndarray,
    *,
    protocol: Protocol,
    min_region_size: int,
) -> SceneMatches:
    """Match one scene's predictions (K, N) bool with scores (K,) to its ground truth (N,) int64."""
    overlaps = _overlaps(masks, scores, gt, protocol, min_region_size)
    union = overlaps.pred_sizes[:, None] + overlaps.gt_sizes[None, :] - overlaps.intersections
    iou = overlaps.intersections / union  # union >= prediction size >= 1
    return SceneMatches(
        has_gt=bool(overlaps.gt_is_counted.any()),
        has_pred=len(overlaps.pred_sizes) > 0,
        per_threshold=tuple(_match_at(overlaps, iou, threshold) for threshold in ALL_THRESHOLDS),
    )
