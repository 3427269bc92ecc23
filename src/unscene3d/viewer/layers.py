"""One scene's layers for the viewer: per-point colours or labels, their legend, and their AP line.

Layers: the input colours (a height ramp when the scan has none), the segments, the ground truth, and
one layer per prediction set. Labels are per displayed point (-1 = none); each label's colour is
:func:`unscene3d.visualize.label_colors` of the label, the same colours as the coloured PLY files.
Large scans are subsampled for display (a fixed-seed uniform sample, so a page is reproducible); masks,
sizes and AP are always computed on the full scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from unscene3d.evaluation import MIN_REGION_SIZE, evaluate_scenes, get_protocol
from unscene3d.evaluation.result import format_percent
from unscene3d.instances import Instances
from unscene3d.scene import Scene
from unscene3d.visualize import label_colors, masks_to_labels

DEFAULT_MAX_POINTS = 250_000
# Display points overlap a little so that a surface reads as closed: size = this x point spacing.
POINT_SIZE_PER_SPACING = 2.5
_SPACING_SAMPLE = 2000

# NYU40 class names, index = label id - 1 (the labels of ScanNet's benchmark ground truth).
NYU40_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes",
    "ceiling", "books", "refrigerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard",
    "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture",
    "otherprop",
)


@dataclass(frozen=True)
class LegendEntry:
    label: int
    text: str
    muted: bool = False  # shown greyed: ground truth that does not count under the protocol


# What a layer shows; the page opens on the last prediction layer (or the first layer without one).
LAYER_KINDS = ("input", "segments", "ground truth", "prediction")


@dataclass
class Layer:
    """Either ``rgb`` (per displayed point) or ``labels`` (per displayed point, -1 none) with a palette."""

    name: str
    summary: str
    kind: str = "input"  # one of LAYER_KINDS
    rgb: np.ndarray | None = None
    labels: np.ndarray | None = None
    palette: np.ndarray | None = None  # (K, 3) uint8: colour of label k
    legend: list[LegendEntry] = field(default_factory=list)


@dataclass
class SceneView:
    name: str
    source: str
    positions: np.ndarray  # (n, 3) displayed points
    total_points: int
    point_size: float  # world units
    layers: list[Layer]

    @property
    def note(self) -> str:
        shown = len(self.positions)
        if shown == self.total_points:
            return f"all {shown:,} points shown"
        return f"{shown:,} of {self.total_points:,} points shown (uniform random sample, seed 0)"


@dataclass(frozen=True)
class PredictionLayer:
    """A prediction set's masks for this scene, over the full scan."""

    name: str
    instances: Instances  # over the scan's N vertices


def display_indices(num_points: int, max_points: int) -> np.ndarray:
    """Indices of the points shown: all, or a fixed-seed uniform sample of ``max_points``, sorted."""
    if max_points < 1:
        raise ValueError(f"max_points must be positive, got {max_points}")
    if num_points <= max_points:
        return np.arange(num_points)
    return np.sort(np.random.default_rng(0).choice(num_points, max_points, replace=False))


def build_scene_view(
    scene: Scene,
    predictions: Sequence[PredictionLayer],
    *,
    segments: np.ndarray | None,
    protocol: str = "scannet",
    max_points: int = DEFAULT_MAX_POINTS,
) -> SceneView:
    """Every layer of one scene; ``segments`` (per vertex, or None for no segment layer)."""
    shown = display_indices(scene.num_vertices, max_points)
    positions = scene.vertices[shown]
    layers = [_input_layer(scene, shown)]
    if segments is not None:
        count = int(segments.max()) + 1 if len(segments) else 0
        layers.append(_label_layer("segments", f"{count:,} segments", segments[shown], count, [], kind="segments"))
    if scene.gt is not None:
        layers.append(_gt_layer(scene.gt, shown, protocol))
    for prediction in predictions:
        layers.append(_prediction_layer(scene, prediction, shown, protocol))
    return SceneView(
        name=scene.name,
        source=str(scene.source) if scene.source is not None else scene.name,
        positions=positions,
        total_points=scene.num_vertices,
        point_size=POINT_SIZE_PER_SPACING * _point_spacing(positions),
        layers=layers,
    )


def _input_layer(scene: Scene, shown: np.ndarray) -> Layer:
    if scene.colors is not None:
        return Layer("input colours", "the scan's own colours", rgb=scene.colors[shown])
    height = scene.vertices[shown, 2]
    span = float(height.max() - height.min()) if len(height) else 0.0
    t = (height - height.min()) / span if span > 0 else np.zeros_like(height)
    low, high = np.array([40, 70, 160]), np.array([240, 200, 60])
    rgb = np.rint(low + t[:, None] * (high - low)).astype(np.uint8)
    return Layer("height", "the scan has no colours: coloured by height", rgb=rgb)


def _label_layer(
    name: str, summary: str, labels: np.ndarray, count: int, legend: list[LegendEntry], *, kind: str
) -> Layer:
    return Layer(name, summary, kind=kind, labels=labels, palette=label_colors(np.arange(count)), legend=legend)


def layer_keys(name: str) -> list[str]:
    """The names a layer answers to in ``view --layer`` and the page's ``#layer=``, lower case: its name, each
    set it merges ("a = b"), and each path suffix of those ("predictions/round_4", "round_4")."""
    keys = [name.lower()]
    for alias in name.lower().split(" = "):
        parts = alias.split("/")
        keys += ["/".join(parts[start:]) for start in range(len(parts))]
    return list(dict.fromkeys(keys))


def _gt_layer(gt: np.ndarray, shown: np.ndarray, protocol: str) -> Layer:
    ids, inverse, sizes = np.unique(gt, return_inverse=True, return_counts=True)
    is_instance = ids != 0
    compact = np.cumsum(is_instance) - 1  # instance k of the legend, for every id but 0
    labels = np.where(is_instance[inverse], compact[inverse], -1)
    counted = get_protocol(protocol).counts(ids // 1000) & (sizes >= MIN_REGION_SIZE)
    legend = []
    for k, (gt_id, size, counts) in enumerate(zip(ids[is_instance], sizes[is_instance], counted[is_instance])):
        label = int(gt_id) // 1000
        reason = "" if counts else (" · not counted: under 100 points" if size < MIN_REGION_SIZE else " · void")
        legend.append(LegendEntry(k, f"{_class_name(label)} · id {gt_id} · {size:,} pts{reason}", not counts))
    summary = f"{len(legend)} instances, {int(counted[is_instance].sum())} counted by the {protocol} protocol"
    return _label_layer("ground truth", summary, labels[shown], len(legend), legend, kind="ground truth")


def _class_name(label: int) -> str:
    if label == 0:
        return "no class"
    return NYU40_NAMES[label - 1] if label <= len(NYU40_NAMES) else f"label {label}"


def _prediction_layer(scene: Scene, prediction: PredictionLayer, shown: np.ndarray, protocol: str) -> Layer:
    instances, scores = prediction.instances, prediction.instances.scores
    labels = masks_to_labels(instances.masks, scores)
    sizes = instances.masks.sum(axis=1)
    legend = [
        LegendEntry(int(k), f"score {scores[k]:.3f} · {int(sizes[k]):,} pts")
        for k in np.argsort(-scores, kind="stable")
    ]
    summary = f"{len(scores)} instances"
    if scene.gt is not None:
        figures = evaluate_scenes([(scene.name, instances, scene.gt)], protocol=protocol).overall
        summary += " · " + " · ".join(f"{key} {format_percent(figures[key])}" for key in ("AP", "AP50", "AP25"))
    return _label_layer(prediction.name, summary, labels[shown], len(scores), legend, kind="prediction")


def _point_spacing(positions: np.ndarray) -> float:
    """Median distance from a point to its nearest neighbour (a fixed sample of points asks)."""
    if len(positions) < 2:
        return 0.01
    tree = cKDTree(positions)
    sample = positions[display_indices(len(positions), _SPACING_SAMPLE)]
    distances, _ = tree.query(sample, k=2)
    spacing = float(np.median(distances[:, 1]))
    if spacing > 0:
        return spacing
    extent = float(np.ptp(positions, axis=0).max())
    return extent / 1000 if extent > 0 else 0.01
