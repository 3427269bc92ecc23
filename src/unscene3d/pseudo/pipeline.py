"""Pseudo masks for scans: oversegment, describe segments, cut the segment graph, write the results.

Per scan ``<out>/<scene>.txt`` + ``<out>/pred_mask/`` (the benchmark format, for evaluation and
viewing), ``<out>/<scene>_instances.ply`` (the scan coloured by mask, grey where none) and
``<out>/<scene>.npz`` (what self-training reads: per-vertex segment index, masks over segments, scores,
parameters, the ``--up``/``--scale``/``--kind`` the scan was read with, and what the masks were made from:
:func:`made_from`). The ``.npz`` is written last and marks a scan as done, for the scan content and options it
records: a re-run redoes a scan whose file changed (or a different scan of the same name) or that other options
are asked of.

What is computed (:class:`PseudoMaskOptions`; docs/benchmarks.md, "Pseudo masks", measures each):

- features (``modality``): ``geometric`` (no weights: :mod:`unscene3d.features.geometric`),
  ``handcrafted`` (the older no-weights descriptor), ``3d`` (a pretrained backbone, or the features it wrote
  with ``unscene3d features3d``), ``2d`` (back-projected DINO features), ``both``; ``auto`` picks the best
  the inputs allow (2D when frames and an encoder are given, 3D when a checkpoint or a features folder is
  given, both when both are, else geometric). Models load once per worker
  (:class:`~unscene3d.features.extractors.FeatureExtractors`), not once per scan;
- scene structure (``structure``): floor, walls and ceiling found as planes and kept out of the
  cuts from the first one (:mod:`unscene3d.segments.structure`);
- the cut (``cut``): ``spatial`` (recursive NCut over touching segments, masks scored by an
  objectness estimate: :mod:`unscene3d.pseudo.cuts`) or ``official`` (the paper's masked NCut on the
  fully connected cosine graph, masks scored by discovery order ``(K - i) / K``). With
  ``cut="official"`` and ``structure=False`` the masks are exactly the official algorithm's;
- or no cut at all (``source="felzenszwalb"``): coarse Felzenszwalb segments taken as pseudo masks,
  the paper's Table 8 ablation, scored by size;
- or the learned model of objects (``source="model"``): candidate masks from several partitions ranked by the
  ranker trained on generated scenes (:mod:`unscene3d.proposals`; the shipped one unless ``ranker`` names a
  file). ``source="auto"`` (the default) is the model, unless the options ask for the cut (a learned modality,
  a checkpoint, an encoder, ``cut="official"`` or no structure), which then runs as before.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unscene3d.errors import InputError
from unscene3d.features.extractors import FeatureExtractors
from unscene3d.features.geometric import geometric_descriptors
from unscene3d.features.handcrafted import handcrafted_segment_features
from unscene3d.features.pooling import pool_segment_features
from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_output
from unscene3d.io.benchmark import export_predictions
from unscene3d.io.scan import expand_scan_paths
from unscene3d.oversegment import Segmentation
from unscene3d.oversegment_points import oversegment_scene
from unscene3d.parallel import map_in_workers
from unscene3d.profile import ProfileRequest
from unscene3d.progress import format_duration
from unscene3d.pseudo.cuts import CutConfig, cut_tree, objectness, select_masks
from unscene3d.pseudo.graph import GraphConfig, segment_affinity
from unscene3d.pseudo.ncut import DEFAULT_TAU, NCutConfig, masked_ncut
from unscene3d.run_record import FileDigest
from unscene3d.scene import Scene
from unscene3d.segments import (
    SegmentedScan,
    SegmentGeometry,
    Structure,
    StructureConfig,
    describe_segments,
    segment_geometry,
)
from unscene3d.threads import process_threads
from unscene3d.visualize import INSTANCES_PLY_SUFFIX, write_instances_ply

if TYPE_CHECKING:
    from unscene3d.proposals.ranker import Ranker

log = logging.getLogger(__name__)

MODALITIES = ("auto", "geometric", "handcrafted", "3d", "2d", "both")
CUTS = ("spatial", "official")
SOURCES = ("auto", "model", "ncut", "felzenszwalb")
FORMAT_VERSION = 1
# Table 8's source: Felzenszwalb segments at the coarse setting of the Felzenszwalb baseline.
FELZENSZWALB_SOURCE_PARAMS = (0.05, 500)
# The spatial graph's feature term: colour for the no-weights modalities (their shape cues enter
# through contact and convexity), the learned features otherwise (docs/benchmarks.md).
_GRAPH_SETTINGS = {
    "geometric": GraphConfig(feature_scale=4.0, feature_distance="euclidean", feature_source="colour"),
    "handcrafted": GraphConfig(feature_scale=4.0, feature_distance="euclidean", feature_source="colour"),
    "learned": GraphConfig(feature_scale=4.0, feature_distance="cosine", feature_source="features"),
}


@dataclass(frozen=True)
class PseudoMaskOptions:
    """What to compute (module docstring). 3D features come from the backbone of ``checkpoint`` or are read
    from ``features3d``, a folder written by ``unscene3d features3d``. ``ncut.tau`` is replaced by the
    modality's default unless ``tau`` is given; ``graph`` defaults to the modality's setting."""

    modality: str = "auto"
    checkpoint: str | None = None
    features3d: str | None = None
    encoder: str | None = None
    tau: float | None = None
    ncut: NCutConfig = field(default_factory=NCutConfig)
    device: str | None = None
    frame_step: int = 20
    cut: str = "spatial"
    structure: bool = True
    source: str = "auto"
    ranker: str | None = None
    structure_config: StructureConfig = field(default_factory=StructureConfig)
    graph: GraphConfig | None = None
    cuts: CutConfig = field(default_factory=CutConfig)
    scan: ProfileRequest = field(default_factory=ProfileRequest)

    def __post_init__(self) -> None:
        for name, value, choices in (("modality", self.modality, MODALITIES), ("cut", self.cut, CUTS),
                                     ("source", self.source, SOURCES)):
            if value not in choices:
                raise InputError(None, f"{name} must be one of {', '.join(choices)}, got {value!r}")
        if self.checkpoint and self.features3d:
            raise InputError(None, "3D features come from a backbone checkpoint (--checkpoint) or from a features3d "
                                   "folder (--features3d), not both")
        if self.modality in ("3d", "both") and not self.has_3d():
            raise InputError(None, f"modality {self.modality} needs a backbone checkpoint (--checkpoint) or the "
                                   "features it wrote (--features3d)")
        if self.modality in ("2d", "both") and not self.encoder:
            raise InputError(None, f"modality {self.modality} needs an image encoder (--encoder hub id or folder)")
        if self.tau is not None and not 0.0 <= self.tau < 1.0:
            raise InputError(None, f"tau must be in [0, 1), got {self.tau}")

    def resolved_source(self) -> str:
        """The source ``auto`` stands for: the cut when any option of the cut is set, else the model."""
        if self.source != "auto":
            return self.source
        wants_cut = (self.modality != "auto" or self.has_3d() or self.encoder is not None or self.cut != "spatial"
                     or self.tau is not None or not self.structure or self.ncut.isolate_masked)
        return "ncut" if wants_cut else "model"

    def has_3d(self) -> bool:
        return bool(self.checkpoint or self.features3d)

    def extractors(self) -> FeatureExtractors:
        """This run's feature models, unloaded: one per worker process, passed to every scan it handles."""
        return FeatureExtractors(checkpoint=self.checkpoint, features3d=self.features3d, encoder=self.encoder,
                                 device=self.device, frame_step=self.frame_step, ranker=self.ranker)

    def needs_frames(self) -> bool:
        return self.modality in ("2d", "both") or (self.modality == "auto" and self.encoder is not None)

    def resolved_modality(self, scene: Scene) -> str:
        """The modality ``auto`` stands for on this scan (any other modality is itself)."""
        if self.modality != "auto":
            return self.modality
        use_2d = self.encoder is not None and bool(scene.frames)
        if self.encoder is not None and not scene.frames:
            log.warning("%s: an encoder was given but the scan has no frames; 2D features skipped", scene.name)
        if use_2d and self.has_3d():
            return "both"
        if use_2d:
            return "2d"
        return "3d" if self.has_3d() else "geometric"

    def ncut_config(self, modality: str) -> NCutConfig:
        return replace(self.ncut, tau=DEFAULT_TAU[modality] if self.tau is None else self.tau)

    def graph_config(self, modality: str) -> GraphConfig:
        if self.graph is not None:
            return self.graph
        return _GRAPH_SETTINGS[modality if modality in _GRAPH_SETTINGS else "learned"]


@dataclass
class PseudoMasks:
    """One scan's pseudo masks over its segments."""

    scene_name: str
    segment_labels: np.ndarray  # (N,) compact segment index per vertex
    instances: Instances  # (K, S) masks over the segments, scores (K,)
    params: dict
    scan_path: Path | None = None  # the scan the masks were made from, so training can find it

    def vertex_instances(self) -> Instances:
        """The masks over the vertices."""
        return self.instances.over(self.segment_labels)


def segment_scene(scene: Scene) -> Segmentation:
    """UnScene3D's colour-aware oversegmentation; the geometric ScanNet one when the scan has no colour.
    Meshes and point clouds alike (:func:`~unscene3d.oversegment_points.oversegment_scene`)."""
    if scene.colors is None:
        log.warning("%s: no vertex colours, oversegmenting with the scannet variant instead", scene.name)
        return oversegment_scene(scene, variant="scannet")
    return oversegment_scene(scene, variant="unscene3d")


def segment_features(
    scene: Scene,
    segmentation: Segmentation,
    modality: str,
    extractors: FeatureExtractors,
    geometry: SegmentGeometry | None = None,
) -> list[np.ndarray]:
    """Per-segment features of ``modality`` (two arrays for ``both``); learned ones from ``extractors``."""
    labels, count, pairs = segmentation.labels, segmentation.num_segments, segmentation.adjacency
    if modality == "handcrafted":
        return [handcrafted_segment_features(scene, labels, count, pairs)]
    if modality == "geometric":
        geometry = geometry if geometry is not None else segment_geometry(scene, labels, count)
        return [geometric_descriptors(geometry)]
    modalities = []
    if modality in ("3d", "both"):
        modalities.append(pool_segment_features(extractors.vertex_3d(scene), labels, count, pairs))
    if modality in ("2d", "both"):
        modalities.append(pool_segment_features(extractors.vertex_2d(scene), labels, count, pairs))
    return modalities


def _graph_features(features: list[np.ndarray], geometry: SegmentGeometry, config: GraphConfig) -> np.ndarray:
    if config.feature_source == "colour":
        return geometry.lab
    if len(features) == 1:
        return features[0]
    # several learned modalities: each unit-normalised, so each counts equally in the cosine
    units = [f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12) for f in features]
    return np.concatenate(units, axis=1)


def _felzenszwalb_source(scene: Scene) -> tuple[np.ndarray, Instances, dict]:
    k_thresh, min_verts = FELZENSZWALB_SOURCE_PARAMS
    segmentation = oversegment_scene(scene, variant="scannet", k_thresh=k_thresh, min_verts=min_verts)
    sizes = np.bincount(segmentation.labels, minlength=segmentation.num_segments)
    kept = np.flatnonzero(sizes >= CutConfig().min_vertices)
    masks = np.zeros((len(kept), segmentation.num_segments), dtype=bool)
    masks[np.arange(len(kept)), kept] = True
    instances = Instances(masks, sizes[kept] / max(len(segmentation.labels), 1)).sorted_by_score()
    return segmentation.labels, instances, segmentation.params


def pseudo_masks_for_scene(scene: Scene, options: PseudoMaskOptions,
                           extractors: FeatureExtractors | None = None) -> PseudoMasks:
    """Oversegment ``scene``, describe its segments, cut the segment graph (module docstring). Pass the same
    ``extractors`` (``options.extractors()``) for many scans so their models load once."""
    source = Path(scene.source).resolve() if scene.source is not None else None
    # how the scan was read, so that training and the viewer read it the same way
    params: dict = {"format_version": FORMAT_VERSION, "source": options.resolved_source(),
                    "scan_options": options.scan.load_options()}
    if params["source"] == "felzenszwalb":
        labels, instances, segmentation_params = _felzenszwalb_source(scene)
        params["oversegmentation"] = segmentation_params
        return PseudoMasks(scene.name, labels, instances, params, source)
    extractors = extractors if extractors is not None else options.extractors()
    if params["source"] == "model":
        labels, instances = _ranked_source(scene, extractors.ranker(), params)
        return PseudoMasks(scene.name, labels, instances, params, source)

    modality = options.resolved_modality(scene)
    if modality in ("2d", "both") and not scene.frames:
        raise InputError(scene.source or scene.name, f"modality {modality} needs posed colour frames; the scan has none")
    segmentation = segment_scene(scene)
    described = None
    if options.structure or options.cut == "spatial" or modality == "geometric":
        described = describe_segments(scene, segmentation.labels, segmentation.num_segments,
                                      structure=options.structure_config, find_structure=options.structure)
    structure = None if described is None else described.structure
    features = segment_features(scene, segmentation, modality, extractors,
                                None if described is None else described.geometry)
    params.update({
        "modality": modality,
        "checkpoint": options.checkpoint,
        **({"features3d": options.features3d} if options.features3d else {}),
        "encoder": options.encoder,
        "oversegmentation": segmentation.params,
        "cut": options.cut,
        "structure": None if structure is None else structure.summary(),
    })
    if options.cut == "official":
        instances = _official_cut(features, segmentation, structure, options.ncut_config(modality), params)
    else:
        instances = _spatial_cut(described, features, modality, options, params)
    return PseudoMasks(scene.name, segmentation.labels, instances, params, source)


def _ranked_source(scene: Scene, ranker: Ranker, params: dict) -> tuple[np.ndarray, Instances]:
    """The learned model's masks: candidates ranked by ``ranker``, over the pseudo-mask oversegmentation."""
    from unscene3d.proposals.ranker import rank_scan  # on use: the candidates draw on this package's cuts

    segmentation, described, ranked = rank_scan(scene, ranker)
    params.update({
        "oversegmentation": segmentation.params,
        "structure": None if described.structure is None else described.structure.summary(),
        "ranker": {"file": str(ranker.path) if ranker.path else None, "seed": ranker.info.get("training", {}).get("seed"),
                   "selection": asdict(ranker.selection)},
        "candidates": len(ranked.candidates),
    })
    return segmentation.labels, ranked.instances


def _official_cut(features: list[np.ndarray], segmentation: Segmentation, structure: Structure | None,
                  config: NCutConfig, params: dict) -> Instances:
    excluded = None if structure is None else structure.is_structure
    result = masked_ncut(features, segmentation.adjacency, config, excluded=excluded)
    params.update({
        "ncut": asdict(config),
        "cuts": result.iterations,
        "rejected": result.rejected,
        "eigenvalues": result.eigenvalues.tolist(),
    })
    return Instances(result.masks, result.scores())


def _spatial_cut(segments: SegmentedScan, features: list[np.ndarray], modality: str, options: PseudoMaskOptions,
                 params: dict) -> Instances:
    graph_config = options.graph_config(modality)
    params.update({"graph": asdict(graph_config), "cuts": asdict(options.cuts)})
    return spatial_cut(segments, _graph_features(features, segments.geometry, graph_config), graph_config, options.cuts)


def spatial_cut(segments: SegmentedScan, features: np.ndarray, graph: GraphConfig, cuts: CutConfig) -> Instances:
    """The spatial cut of a scan's segments on the segment features ``features`` (S, C): masks over the
    segments scored by objectness, structure left out when it was found."""
    affinity = segment_affinity(segments.geometry, segments.contacts, features, graph)
    candidates = cut_tree(affinity, ~segments.is_structure, cuts)
    scores = objectness(candidates, segments.geometry, cuts)
    return Instances(*select_masks(candidates, scores, segments.sizes, cuts))


def write_pseudo_masks(out_dir: str | Path, pseudo: PseudoMasks, scene: Scene | None = None,
                       origin: Mapping[str, Any] | None = None) -> Path:
    """Write the benchmark files (and, given the ``scene``, its ``<scene>_instances.ply`` coloured by mask),
    then ``<scene>.npz`` (atomically, last); return the ``.npz`` path. Given the ``scene``, the benchmark
    masks are laid out per input point (a cloud's NaN rows in no mask), so they line up with the file.
    ``origin`` (:func:`made_from`) is stored with them."""
    out_dir = Path(out_dir)
    vertex_instances = pseudo.vertex_instances()
    if scene is not None:
        write_instances_ply(out_dir / f"{pseudo.scene_name}{INSTANCES_PLY_SUFFIX}", scene, vertex_instances)
        vertex_instances = vertex_instances.to_input(scene)
    export_predictions(out_dir, pseudo.scene_name, vertex_instances.masks, vertex_instances.scores)
    path = out_dir / f"{pseudo.scene_name}.npz"
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                segment_labels=pseudo.segment_labels.astype(np.int32),
                segment_masks=pseudo.instances.masks,
                scores=pseudo.instances.scores,
                params=np.array(json.dumps(pseudo.params)),
                scan_path=np.array("" if pseudo.scan_path is None else str(pseudo.scan_path)),
                made_from=np.array("" if origin is None else json.dumps(origin, sort_keys=True)),
            )
    return path


def options_record(options: PseudoMaskOptions) -> dict[str, Any]:
    """The options as far as they change the masks: all but the device, with the files they name (a
    checkpoint, a ranker, a local encoder) known by content rather than by path."""
    from unscene3d.run_record import content_digest

    record = json.loads(json.dumps(asdict(options), default=str))
    del record["device"]
    for name in ("checkpoint", "ranker", "encoder"):
        value = getattr(options, name)
        if value is not None and Path(value).exists():
            record[name] = {"blake2b": content_digest(value).blake2b}
    if options.features3d is not None:
        record["features3d"] = "per scan"  # each scan's feature file is part of its own record
    return record


def made_from(scan: FileDigest, options: Mapping[str, Any], features3d: str | None, name: str) -> dict[str, Any]:
    """What a scan's pseudo masks are made from: the scan's content, the options (:func:`options_record`),
    its 3D feature file when read from a folder, and the code release."""
    from unscene3d import __version__
    from unscene3d.run_record import content_digest

    origin: dict[str, Any] = {"scan": scan.to_dict(), "options": dict(options), "unscene3d": __version__}
    if features3d is not None:
        feature_file = Path(features3d) / f"{name}.npy"
        origin["features3d"] = content_digest(feature_file).blake2b if feature_file.is_file() else None
    return origin


def pseudo_mask_origin(path: str | Path) -> dict[str, Any] | None:
    """What a ``<scene>.npz`` records it was made from (:func:`made_from`), or None (an older file, or one
    unreadable: either way it is made again)."""
    try:
        with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as data:
            text = str(data["made_from"]) if "made_from" in data.files else ""
        origin = json.loads(text) if text else None
        if origin is not None:
            FileDigest.from_dict(origin["scan"])  # a record without a readable scan digest counts as none
        return origin
    except (OSError, KeyError, ValueError, TypeError):
        return None


def same_origin(recorded: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether masks recorded as made from ``recorded`` are those ``wanted`` asks for (the scan's content,
    not its path, counts)."""
    if recorded is None:
        return False
    content = ("options", "unscene3d", "features3d")
    return (recorded.get("scan", {}).get("blake2b") == wanted["scan"]["blake2b"]
            and all(recorded.get(key) == wanted.get(key) for key in content))


def read_pseudo_masks(path: str | Path) -> PseudoMasks:
    """Read a ``<scene>.npz`` written by :func:`write_pseudo_masks`."""
    path = Path(path)
    try:
        # The file is opened here: np.load leaves its own handle open when the zip is corrupt.
        with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as data:
            labels = data["segment_labels"].astype(np.int64)
            masks = data["segment_masks"].astype(bool)
            scores = data["scores"].astype(np.float64)
            params = json.loads(str(data["params"]))
            scan_path = str(data["scan_path"]) if "scan_path" in data.files else ""
    except (OSError, KeyError, ValueError) as error:
        raise InputError(path, f"not a pseudo-mask file: {error}") from None
    try:
        instances = Instances(masks, scores)
    except ValueError as error:
        raise InputError(path, f"inconsistent pseudo-mask arrays: {error}") from None
    if len(labels) and (labels.min() < 0 or labels.max() >= instances.num_units):
        raise InputError(path, f"inconsistent pseudo-mask arrays: segment labels beyond the {instances.num_units} "
                               "masked segments")
    return PseudoMasks(path.stem, labels, instances, params, Path(scan_path) if scan_path else None)


def _worker_setup(options: PseudoMaskOptions, threads: int | None) -> FeatureExtractors:
    """A worker's start: its share of the torch threads, and its feature models (each loaded on first use)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return options.extractors()


def _process_scan(options: PseudoMaskOptions, out_dir: str, extractors: FeatureExtractors,
                  item: tuple[str, dict[str, Any]]) -> tuple[str, int, float]:
    from unscene3d.io.scan import load_scan

    scan, origin = item
    start = time.perf_counter()
    scene = load_scan(scan, load_frames=options.needs_frames(), **options.scan.load_options())
    pseudo = pseudo_masks_for_scene(scene, options, extractors)
    write_pseudo_masks(out_dir, pseudo, scene, origin)
    return scene.name, len(pseudo.instances), time.perf_counter() - start


def run_pseudo_masks(
    scans: Sequence[str | Path],
    out_dir: str | Path,
    options: PseudoMaskOptions,
    *,
    workers: int = 1,
    force: bool = False,
    known: Mapping[str, FileDigest] | None = None,
) -> list[Path]:
    """Pseudo masks for every scan (``expand_scan_paths`` rules) into ``out_dir``; returns the ``.npz`` files.

    Scans whose ``.npz`` records the same scan content and options (:func:`same_origin`) are skipped unless
    ``force``; others are (re)made. ``known`` digests of scans (and those the files record) spare reading
    unchanged scans again. ``workers`` > 1 runs scans in parallel processes, which share this process's
    threads (:func:`unscene3d.threads.process_threads`). Each worker loads its models once.
    """
    from unscene3d.io.scan import scan_name
    from unscene3d.run_record import scan_digest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_scans = expand_scan_paths(scans)
    outputs = [out_dir / f"{scan_name(s)}.npz" for s in all_scans]
    options_key = options_record(options)
    todo = []
    for scan, output in zip(all_scans, outputs):
        recorded = pseudo_mask_origin(output) if output.exists() else None
        cache = dict(known or {})
        if recorded is not None:
            cache.setdefault(recorded["scan"]["path"], FileDigest.from_dict(recorded["scan"]))
        origin = made_from(scan_digest(scan, cache), options_key, options.features3d, output.stem)
        if force or not same_origin(recorded, origin):
            if output.exists() and not force:
                log.info("%s: its pseudo masks were made from another scan of that name, other content or other "
                         "options: making them again", output)
            todo.append((str(scan), origin))
    if len(todo) < len(all_scans):
        skipped = len(all_scans) - len(todo)
        log.info("%d of %d scans already done, skipping them (use --force to redo)", skipped, len(all_scans))
    if not todo:
        return outputs
    start = time.perf_counter()

    def report(done: int, name: str, count: int, seconds: float) -> None:
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (len(todo) - done)
        log.info(
            "pseudo-masks %d/%d: %s, %d masks in %.1fs; %.2f scans/s, elapsed %s, ETA %s",
            done, len(todo), name, count, seconds, done / elapsed, format_duration(elapsed), format_duration(eta),
        )

    threads = None if workers <= 1 else max(1, process_threads() // workers)
    scans_done = map_in_workers(partial(_process_scan, options, str(out_dir)), todo,
                                partial(_worker_setup, options, threads), workers)
    for done, result in enumerate(scans_done, 1):
        report(done, *result)
    return outputs
