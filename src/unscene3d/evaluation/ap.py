"""Class-agnostic AP, AP50 and AP25 by the ScanNet benchmark procedure.

The benchmark pools the matches of all scenes before it builds one precision/recall curve per IoU
threshold, so the overall figures are not the mean of per-scene figures. Per-scene figures are the
same procedure run on one scene alone.

A figure is nan when no ground-truth instance counts (no foreground instance of at least
``min_region_size`` vertices), and 0 when instances count but no prediction does; this is the
benchmark's rule for a class without ground truth or without predictions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.evaluation.matching import (
    ALL_THRESHOLDS,
    AP_THRESHOLDS,
    MIN_REGION_SIZE,
    SceneMatches,
    ThresholdMatches,
    match_scene,
)
from unscene3d.evaluation.result import EvaluationResult
from unscene3d.instances import Instances
from unscene3d.io.benchmark import (
    list_prediction_scenes,
    read_gt_txt,
    read_prediction_mask_paths,
    read_predictions,
)
from unscene3d.io.ground_truth import GroundTruthFiles
from unscene3d.protocols import PROTOCOLS, Protocol

log = logging.getLogger(__name__)

SceneItem = tuple[str, Instances, np.ndarray]  # (scene name, instances over its N vertices, gt (N,))


def precision_recall_curve(
    is_true: np.ndarray, scores: np.ndarray, hard_false_negatives: int
) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's precision/recall curve for scored examples (1 = TP, 0 = FP).

    One point per distinct score s (precision and recall of the examples scoring >= s), in increasing
    score order (so decreasing recall), then the artificial point (recall 0, precision 1).
    Returns (precision, recall), each of length (distinct scores + 1).
    """
    is_true = np.asarray(is_true, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores)
    sorted_true = is_true[order]
    _, first_of_score = np.unique(scores[order], return_index=True)

    # Examples scoring at least each distinct score, and the true ones among them.
    num_above = len(scores) - first_of_score
    true_above = np.cumsum(sorted_true[::-1])[::-1][first_of_score]
    num_true = sorted_true.sum()
    precision = np.append(true_above / num_above, 1.0)
    recall = np.append(true_above / (num_true + hard_false_negatives), 0.0)
    return precision, recall


def average_precision(is_true: np.ndarray, scores: np.ndarray, hard_false_negatives: int) -> float:
    """Area under the benchmark's precision/recall curve (:func:`precision_recall_curve`), in percent.

    Each point's precision is weighted by half the recall gap between its two neighbours, the first
    point's left neighbour being itself.
    """
    precision, recall = precision_recall_curve(is_true, scores, hard_false_negatives)
    padded = np.concatenate([recall[:1], recall, [0.0]])
    step_widths = 0.5 * (padded[:-2] - padded[2:])
    return 100 * float(np.dot(precision, step_widths))


def _pooled(scenes: Sequence[SceneMatches], threshold_index: int) -> tuple[np.ndarray, np.ndarray, int]:
    matches: list[ThresholdMatches] = [scene.per_threshold[threshold_index] for scene in scenes]
    return (
        np.concatenate([m.is_true for m in matches]),
        np.concatenate([m.scores for m in matches]),
        sum(m.hard_false_negatives for m in matches),
    )


def _pooled_ap(scenes: Sequence[SceneMatches], threshold_index: int) -> float:
    if not any(scene.has_gt for scene in scenes):
        return float("nan")
    if not any(scene.has_pred for scene in scenes):
        return 0.0
    return average_precision(*_pooled(scenes, threshold_index))


def pooled_curves(scenes: Sequence[SceneMatches]) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """The pooled precision/recall curve of the scenes at each IoU threshold (``ALL_THRESHOLDS``), as
    (precision, recall); thresholds where no ground truth counts are left out."""
    if not any(scene.has_gt for scene in scenes):
        return {}
    return {
        threshold: precision_recall_curve(*_pooled(scenes, index)) for index, threshold in enumerate(ALL_THRESHOLDS)
    }


def ap_per_threshold(scenes: Sequence[SceneMatches]) -> dict[float, float]:
    """Pooled AP (percent) at each IoU threshold of ``ALL_THRESHOLDS`` (nan where no ground truth counts)."""
    return {threshold: _pooled_ap(scenes, index) for index, threshold in enumerate(ALL_THRESHOLDS)}


def _figures(scenes: Sequence[SceneMatches]) -> dict[str, float]:
    aps = [_pooled_ap(scenes, index) for index in range(len(AP_THRESHOLDS))]
    return {
        # One class: the benchmark's nan-mean over thresholds is nan or the plain mean.
        "AP": float(np.mean(aps)),
        "AP50": aps[0],
        "AP25": _pooled_ap(scenes, len(AP_THRESHOLDS)),
    }


def _check_item(name: str, instances: Instances, gt: np.ndarray) -> np.ndarray:
    gt = np.asarray(gt)
    if gt.ndim != 1 or not np.issubdtype(gt.dtype, np.integer):
        raise ValueError(f"{name}: gt must be a 1-D integer array, got {gt.dtype} {gt.shape}")
    if instances.num_units != len(gt):
        raise ValueError(f"{name}: masks must be (K, {len(gt)}) for {len(gt)} vertices, got {instances.masks.shape}")
    return gt.astype(np.int64, copy=False)


def get_protocol(protocol: str | Protocol = "scannet", valid_class_ids: Iterable[int] | None = None) -> Protocol:
    """A protocol by name (``PROTOCOLS``), or a custom one counting exactly ``valid_class_ids``."""
    if valid_class_ids is not None:
        class_ids = tuple(int(i) for i in valid_class_ids)
        if not class_ids or min(class_ids) < 1:
            raise ValueError("valid_class_ids must be positive label ids (label 0 means 'no label')")
        return Protocol("custom", class_ids)
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise InputError(None, f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return PROTOCOLS[protocol]


def match_scenes(
    items: Iterable[SceneItem],
    *,
    protocol: str | Protocol = "scannet",
    valid_class_ids: Iterable[int] | None = None,
    min_region_size: int = MIN_REGION_SIZE,
) -> dict[str, SceneMatches]:
    """Match each ``(scene_name, instances over N vertices, gt (N,) int64)`` item by the benchmark rules.

    ``gt`` is ``label * 1000 + instance`` per vertex; the instances the protocol counts are foreground,
    all else is void (``valid_class_ids``, when given, replaces the protocol by exactly those labels).
    Items are consumed one at a time (a generator keeps memory low).
    """
    rule = get_protocol(protocol, valid_class_ids)
    if min_region_size < 1:
        raise ValueError(f"min_region_size must be at least 1, got {min_region_size}")

    matches: dict[str, SceneMatches] = {}
    for name, instances, gt in items:
        if name in matches:
            raise ValueError(f"scene {name!r} given twice")
        gt = _check_item(name, instances, gt)
        matches[name] = match_scene(instances.masks, instances.scores, gt, protocol=rule,
                                    min_region_size=min_region_size)
        log.debug("%s: %d predictions matched", name, len(instances))
    return matches


def summarize(matches: dict[str, SceneMatches], protocol: str = "scannet") -> EvaluationResult:
    """Overall (pooled) and per-scene figures of :func:`match_scenes`' output."""
    return EvaluationResult(
        overall=_figures(list(matches.values())),
        per_scene={name: _figures([scene]) for name, scene in matches.items()},
        protocol=protocol,
    )


def evaluate_scenes(
    items: Iterable[SceneItem],
    *,
    protocol: str | Protocol = "scannet",
    valid_class_ids: Iterable[int] | None = None,
    min_region_size: int = MIN_REGION_SIZE,
) -> EvaluationResult:
    """AP / AP50 / AP25 of ``(scene_name, instances, gt)`` items (arguments as :func:`match_scenes`)."""
    rule = get_protocol(protocol, valid_class_ids)
    return summarize(match_scenes(items, protocol=rule, min_region_size=min_region_size), rule.name)


def match_dirs(
    pred_dir: str | Path,
    gt_dir: str | Path,
    scenes: Iterable[str] | None = None,
    *,
    protocol: str | Protocol = "scannet",
    predicted_only: bool = False,
    min_region_size: int = MIN_REGION_SIZE,
) -> dict[str, SceneMatches]:
    """:func:`match_scenes` for benchmark-format predictions ``<pred_dir>/<scene>.txt`` against
    ``<gt_dir>/<scene>.txt``, or scan folders' own ``instance_gt/<scene>.txt``
    (:class:`~unscene3d.io.ground_truth.GroundTruthFiles`).

    ``scenes`` defaults to every scene listed in ``pred_dir`` and, unless ``predicted_only``, every
    scene of ``gt_dir`` too: a ground-truth scene without predictions counts as all missed (with a
    warning), as on the benchmark, rather than dropping out of the figures.
    """
    pred_dir = Path(pred_dir)
    truth = GroundTruthFiles.find(gt_dir)
    names = list_prediction_scenes(pred_dir) if scenes is None else list(scenes)
    if not names:
        raise InputError(pred_dir, "no prediction files (<scene>.txt) to evaluate")
    for name in names:
        if not (pred_dir / f"{name}.txt").is_file():
            raise InputError(pred_dir / f"{name}.txt", f"prediction file not found for scene {name}")
        truth.path(name, pred_dir)
    unpredicted = [] if scenes is not None or predicted_only else sorted(set(truth.files) - set(names))
    if unpredicted:
        log.warning("%s: %d ground-truth scenes have no predictions in %s (e.g. %s); they count as missed "
                    "(--predicted-only scores only the predicted scenes)", gt_dir, len(unpredicted), pred_dir,
                    ", ".join(unpredicted[:3]))

    def items() -> Iterable[SceneItem]:
        for name in names:
            gt_path = truth.path(name, pred_dir)
            masks, _, scores = read_predictions(pred_dir, name, None)
            gt = read_gt_txt(gt_path)
            if len(masks) and masks.shape[1] != len(gt):
                _blame_length_mismatch(pred_dir, name, masks, gt_path, len(gt))
            yield name, Instances(masks.reshape(len(masks), len(gt)), scores), gt
        for name in unpredicted:
            gt = read_gt_txt(truth.files[name])
            yield name, Instances.empty(len(gt)), gt

    return match_scenes(items(), protocol=protocol, min_region_size=min_region_size)


def evaluate_dirs(
    pred_dir: str | Path,
    gt_dir: str | Path,
    scenes: Iterable[str] | None = None,
    *,
    protocol: str | Protocol = "scannet",
    predicted_only: bool = False,
    min_region_size: int = MIN_REGION_SIZE,
) -> EvaluationResult:
    """AP / AP50 / AP25 of a benchmark-format prediction folder (arguments as :func:`match_dirs`)."""
    rule = get_protocol(protocol)
    matches = match_dirs(pred_dir, gt_dir, scenes, protocol=rule, predicted_only=predicted_only,
                         min_region_size=min_region_size)
    return summarize(matches, rule.name)


def _blame_length_mismatch(pred_dir: Path, name: str, masks: np.ndarray, gt_path: Path, gt_length: int) -> None:
    """Masks and ground truth of different lengths: several masks that agree outvote the ground truth;
    a single mask is the suspect. The message names both files either way."""
    first_mask = read_prediction_mask_paths(pred_dir, name)[0]
    if len(masks) > 1:
        raise InputError(gt_path, f"has {gt_length} lines, but the {len(masks)} masks predicted for {name} have "
                                  f"{masks.shape[1]} (e.g. {first_mask}): ground truth and predictions are of "
                                  "different meshes")
    raise InputError(first_mask, f"has {masks.shape[1]} lines, but the ground truth {gt_path} has {gt_length} "
                                 "(one per mesh vertex)")
