"""Class-agnostic 3D instance segmentation AP (AP, AP50, AP25) by the ScanNet benchmark procedure."""

from unscene3d.evaluation.ap import average_precision, evaluate_dirs, evaluate_scenes
from unscene3d.evaluation.matching import MIN_REGION_SIZE, SCANNET_BENCHMARK_CLASS_IDS
from unscene3d.evaluation.result import EvaluationResult, format_table

__all__ = [
    "MIN_REGION_SIZE",
    "SCANNET_BENCHMARK_CLASS_IDS",
    "EvaluationResult",
    "average_precision",
    "evaluate_dirs",
    "evaluate_scenes",
    "format_table",
]
