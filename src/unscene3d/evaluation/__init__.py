"""Class-agnostic 3D instance segmentation AP (AP, AP50, AP25) by the ScanNet benchmark procedure.

Every AP figure here is in percent (0-100), as the command prints it and papers report it; precision and
recall (the curves) are fractions.
"""

from unscene3d.evaluation.ap import (
    ap_per_threshold,
    average_precision,
    evaluate_dirs,
    evaluate_scenes,
    get_protocol,
    match_dirs,
    match_scenes,
    pooled_curves,
    precision_recall_curve,
    summarize,
)
from unscene3d.evaluation.matching import ALL_THRESHOLDS, MIN_REGION_SIZE, SceneMatches
from unscene3d.evaluation.result import EvaluationResult, format_table
from unscene3d.protocols import PROTOCOLS, SCANNET_BENCHMARK_CLASS_IDS, STRUCTURE_CLASS_IDS, Protocol

__all__ = [
    "ALL_THRESHOLDS",
    "MIN_REGION_SIZE",
    "PROTOCOLS",
    "SCANNET_BENCHMARK_CLASS_IDS",
    "STRUCTURE_CLASS_IDS",
    "EvaluationResult",
    "Protocol",
    "SceneMatches",
    "ap_per_threshold",
    "average_precision",
    "evaluate_dirs",
    "evaluate_scenes",
    "format_table",
    "get_protocol",
    "match_dirs",
    "match_scenes",
    "pooled_curves",
    "precision_recall_curve",
    "summarize",
]
