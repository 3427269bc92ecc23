"""The learned ranker: how likely a candidate mask is to be a whole object, from its features alone.

An ensemble of small MLPs reads each candidate's features (:mod:`unscene3d.proposals.features`, standardised
with the training set's mean and spread) and predicts the IoU of the candidate with the object it covers best;
the mean over the ensemble is the candidate's score. A ranker may carry **view rankers**, ensembles trained
the same way on one view of the features each (:data:`~unscene3d.proposals.features.VIEWS`, the others held
at their training mean): self-training on a user's scans trusts only the masks that the ranker and every view
call objects (:mod:`unscene3d.proposals.self_training`). The networks are trained with torch and run with numpy
(a few hundred candidates per scan: numpy needs no thread pool and no torch import). It is trained on generated scenes, whose instance labels
come for free (:mod:`unscene3d.proposals.training`), so no human label is involved. The masks of a scan are
then taken greedily by score, skipping any whose IoU with a mask already taken exceeds ``nms_iou``, up to
``max_masks`` with a score of at least ``min_score`` (AP rewards ranked recall, so many masks ranked well beat
a few).

A ranker is one safetensors file: the ensemble's weights, ``feature_mean`` / ``feature_std``, and in its
metadata the settings (:class:`RankerConfig`, the proposal sources, the selection) and how it was trained (the
command, its configuration and seed, the data, the validation figures). The package ships one
(:data:`SHIPPED_RANKER`), made by ``unscene3d train-ranker`` as docs/benchmarks.md says.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from unscene3d.errors import InputError
from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_output
from unscene3d.oversegment import Segmentation
from unscene3d.proposals.candidates import Candidates, ProposalConfig, propose
from unscene3d.proposals.features import FEATURE_NAMES, VIEWS, candidate_features
from unscene3d.scene import Scene
from unscene3d.segments import SegmentedScan

log = logging.getLogger(__name__)

SHIPPED_RANKER = Path(__file__).with_name("ranker.safetensors")
FORMAT = "unscene3d-ranker"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RankerConfig:
    """Sizes of the ensemble's MLPs."""

    hidden: int = 128
    layers: int = 2
    dropout: float = 0.1
    ensemble: int = 5


@dataclass(frozen=True)
class SelectionConfig:
    """Which ranked candidates become a scan's masks (module docstring)."""

    max_masks: int = 100
    nms_iou: float = 0.5
    min_score: float = 0.05
    # ScanNet's evaluation ignores instances under 100 vertices, and the ranker never learnt from smaller ones
    min_points: int = 100  # = training.MIN_OBJECT_POINTS


Layers = list[tuple[np.ndarray, np.ndarray]]  # one ensemble member: (weight (out, in), bias (out,)) per layer


@dataclass
class Ranker:
    """The ensemble with its feature standardisation and settings (module docstring). ``members`` hold each MLP's
    layers; every layer but the last is followed by a ReLU, the last gives the logit of the expected IoU."""

    members: list[Layers]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    config: RankerConfig = field(default_factory=RankerConfig)
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the file it was read from
    inputs: tuple[str, ...] | None = None  # the features it reads (None: all); the others count as their mean
    views: dict[str, Ranker] = field(default_factory=dict)  # view rankers (module docstring)

    def standardise(self, features: np.ndarray) -> np.ndarray:
        standard = (np.asarray(features, dtype=np.float64) - self.feature_mean) / self.feature_std
        if self.inputs is not None:
            standard[:, [name not in self.inputs for name in FEATURE_NAMES]] = 0.0
        return standard.astype(np.float32)

    def view(self, name: str, members: list[Layers]) -> Ranker:
        """A view ranker of this one: the same standardisation and settings, reading only ``VIEWS[name]``."""
        return replace(self, members=members, info={}, inputs=VIEWS[name], views={})

    def score(self, features: np.ndarray) -> np.ndarray:
        """(K,) expected IoU of each candidate with the object it covers best (ensemble mean)."""
        inputs = self.standardise(features)
        total = np.zeros(len(inputs))
        for layers in self.members:
            hidden = inputs
            for index, (weight, bias) in enumerate(layers):
                hidden = hidden @ weight.T + bias
                if index < len(layers) - 1:
                    hidden = np.maximum(hidden, 0.0)
            total += 1.0 / (1.0 + np.exp(-hidden[:, 0].astype(np.float64)))
        return total / max(len(self.members), 1)

    def save(self, path: str | Path) -> None:
        """Write the ranker as one safetensors file (atomically)."""
        tensors = {f"{prefix}member{k}.layer{j}.{name}": np.ascontiguousarray(value, dtype=np.float32)
                   for prefix, ranker in [("", self), *((f"view.{v}.", r) for v, r in self.views.items())]
                   for k, layers in enumerate(ranker.members) for j, pair in enumerate(layers)
                   for name, value in zip(("weight", "bias"), pair)}
        tensors["feature_mean"] = self.feature_mean.astype(np.float64)
        tensors["feature_std"] = self.feature_std.astype(np.float64)
        metadata = {
            "format": FORMAT, "format_version": str(FORMAT_VERSION),
            "settings": json.dumps({"ranker": asdict(self.config), "proposals": self.proposals.to_dict(),
                                    "selection": asdict(self.selection), "features": list(FEATURE_NAMES),
                                    "views": {v: list(VIEWS[v]) for v in self.views}}),
            "info": json.dumps(self.info),
        }
        with atomic_output(Path(path)) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)


def load_ranker(path: str | Path | None = None) -> Ranker:
    """Read a ranker file (default: the one shipped with the package); one-line errors for anything else."""
    path = Path(path) if path is not None else SHIPPED_RANKER
    if not path.is_file():
        if path == SHIPPED_RANKER:
            raise InputError(path, "the package's ranker weights are missing: reinstall unscene3d, or make them with "
                                   "`unscene3d train-ranker -o FILE` and pass --ranker FILE")
        raise InputError(path, "no such ranker file")
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as handle:  # the metadata: safetensors' JSON header after its 8-byte length
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        metadata = header.get("__metadata__", {})
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(path, f"not a ranker file: {error}") from None
    if metadata.get("format") != FORMAT:
        raise InputError(path, f"not a ranker file (format {metadata.get('format')!r})")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise InputError(path, f"ranker format version {metadata.get('format_version')} is not this version's "
                               f"{FORMAT_VERSION}: retrain it with `unscene3d train-ranker`")
    settings = json.loads(metadata["settings"])
    if tuple(settings["features"]) != FEATURE_NAMES:
        raise InputError(path, "the ranker was trained on other candidate features: retrain it with "
                               "`unscene3d train-ranker`")
    config = RankerConfig(**settings["ranker"])

    def members(prefix: str) -> list[Layers]:
        return [[(tensors[f"{prefix}member{k}.layer{j}.weight"], tensors[f"{prefix}member{k}.layer{j}.bias"])
                 for j in range(config.layers + 1)] for k in range(config.ensemble)]

    views = settings.get("views", {})  # files before the view rankers have none
    if any(name not in VIEWS or tuple(inputs) != VIEWS[name] for name, inputs in views.items()):
        raise InputError(path, "the ranker's views read other features: retrain it with `unscene3d train-ranker`")
    ranker = Ranker(members(""), tensors["feature_mean"], tensors["feature_std"], config,
                    ProposalConfig.from_dict(settings["proposals"]), SelectionConfig(**settings["selection"]),
                    json.loads(metadata.get("info", "{}")), path)
    ranker.views = {name: ranker.view(name, members(f"view.{name}.")) for name in views}
    return ranker


def select_candidates(masks: np.ndarray, scores: np.ndarray, sizes: np.ndarray,
                      config: SelectionConfig) -> np.ndarray:
    """Indices of the masks kept, in score order: greedy, a mask is skipped when its vertex IoU with one already
    kept exceeds ``config.nms_iou``, its score is below ``config.min_score`` or it holds fewer than
    ``config.min_points`` vertices (``sizes``: vertices per segment); at most ``config.max_masks``."""
    weighted = masks.astype(np.float64) * sizes[None]
    size = weighted.sum(axis=1)
    kept: list[int] = []
    for index in np.argsort(-scores, kind="stable"):
        if scores[index] < config.min_score or len(kept) == config.max_masks:
            break
        if size[index] < max(config.min_points, 1):
            continue
        if kept:
            overlap = masks[kept].astype(np.float64) @ weighted[index]
            if (overlap / (size[kept] + size[index] - overlap)).max() > config.nms_iou:
                continue
        kept.append(int(index))
    return np.asarray(kept, dtype=np.int64)


@dataclass(frozen=True)
class RankedScan:
    """A scan's ranked masks: over its segments (``instances``, K x S), the candidates they came from and
    every candidate's score."""

    candidates: Candidates
    scores: np.ndarray
    instances: Instances


def rank_candidates(scene: Scene, segments: SegmentedScan, ranker: Ranker) -> RankedScan:
    """Propose candidates for ``scene``, score them with ``ranker`` and keep the best (module docstring)."""
    candidates = propose(scene, segments, ranker.proposals)
    scores = ranker.score(candidate_features(segments, candidates, ranker.proposals))
    kept = select_candidates(candidates.masks, scores, segments.sizes.astype(np.float64), ranker.selection)
    return RankedScan(candidates, scores, Instances(candidates.masks[kept], scores[kept]))


# Generated training rooms span 4-5 m and real rooms rarely 15 m; past this the scan is no room the model has seen.
LARGEST_ROOM = 20.0


def _warn_if_unlike_training(scene: Scene) -> None:
    if scene.num_vertices == 0:
        return
    across = float(np.ptp(scene.vertices[:, :2], axis=0).max())
    if across > LARGEST_ROOM:
        log.warning("%s is %.0f m across, larger than any room the model of objects learnt from (generated rooms of "
                    "4-5 m): expect weak masks; for a building or outdoor scan, cut it into rooms or tiles first, or "
                    "use `unscene3d baseline felzenszwalb`", scene.source or scene.name, across)


def rank_scan(scene: Scene, ranker: Ranker) -> tuple[Segmentation, SegmentedScan, RankedScan]:
    """The model of objects on a scan: the pseudo-mask oversegmentation, its segments described, their candidates
    ranked. Numpy's BLAS runs one thread meanwhile: its calls here are small (N x 3 products, 3 x 3
    eigenproblems) and OpenBLAS's threads spend more time waiting on each other than working (a third more
    CPU time on a 2-core machine; the results are the same)."""
    from threadpoolctl import threadpool_limits

    from unscene3d.pseudo.pipeline import segment_scene
    from unscene3d.segments import describe_segments

    _warn_if_unlike_training(scene)
    with threadpool_limits(1, user_api="blas"):
        segmentation = segment_scene(scene)
        segments = describe_segments(scene, segmentation.labels, segmentation.num_segments)
        return segmentation, segments, rank_candidates(scene, segments, ranker)
