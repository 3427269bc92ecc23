"""Pseudo masks for scans: oversegment, pool segment features, masked NCut, write the results.

Per scan ``<out>/<scene>.txt`` + ``<out>/pred_mask/`` (the benchmark format, for evaluation and
viewing), ``<out>/<scene>_instances.ply`` (the scan coloured by mask, grey where none) and
``<out>/<scene>.npz`` (what self-training reads: per-vertex segment index, masks over segments, scores,
parameters). The ``.npz`` is written last and marks a scan as done.

Scores: masks in discovery order get ``(K - i) / K`` (the first cut finds the most separable
object; NCut gives no calibrated confidence, and the self-training stage keeps every initial mask).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.features.handcrafted import handcrafted_segment_features
from unscene3d.features.pooling import pool_segment_features
from unscene3d.io.atomic import atomic_output
from unscene3d.io.benchmark import export_predictions
from unscene3d.io.scan import expand_scan_paths
from unscene3d.oversegment import Segmentation, oversegment
from unscene3d.progress import format_duration
from unscene3d.pseudo.ncut import DEFAULT_TAU, NCutConfig, masked_ncut
from unscene3d.scene import Scene
from unscene3d.visualize import INSTANCES_PLY_SUFFIX, write_instances_ply

log = logging.getLogger(__name__)

MODALITIES = ("3d", "2d", "both", "handcrafted")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PseudoMaskOptions:
    """What to compute. ``ncut.tau`` is replaced by the modality's default unless ``tau`` is given."""

    modality: str = "handcrafted"
    checkpoint: str | None = None
    encoder: str | None = None
    tau: float | None = None
    ncut: NCutConfig = field(default_factory=NCutConfig)
    device: str | None = None
    frame_step: int = 20

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise InputError(None, f"modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        if self.modality in ("3d", "both") and not self.checkpoint:
            raise InputError(None, f"modality {self.modality} needs a backbone checkpoint (--checkpoint)")
        if self.modality in ("2d", "both") and not self.encoder:
            raise InputError(None, f"modality {self.modality} needs an image encoder (--encoder hub id or folder)")

    def ncut_config(self) -> NCutConfig:
        return replace(self.ncut, tau=DEFAULT_TAU[self.modality] if self.tau is None else self.tau)


@dataclass
class PseudoMasks:
    """One scan's pseudo masks over its segments."""

    scene_name: str
    segment_labels: np.ndarray  # (N,) compact segment index per vertex
    segment_masks: np.ndarray  # (K, S) bool
    scores: np.ndarray  # (K,)
    params: dict
    scan_path: Path | None = None  # the scan the masks were made from, so training can find it

    def vertex_masks(self) -> np.ndarray:
        """(K, N) bool masks over the vertices."""
        return self.segment_masks[:, self.segment_labels]


def segment_scene(scene: Scene) -> Segmentation:
    """UnScene3D's colour-aware oversegmentation; the geometric ScanNet one when the scan has no colour."""
    if scene.colors is None:
        log.warning("%s: no vertex colours, oversegmenting with the scannet variant instead", scene.name)
        return oversegment(scene.vertices, scene.faces, variant="scannet")
    return oversegment(scene.vertices, scene.faces, scene.colors, variant="unscene3d")


def segment_features(scene: Scene, segmentation: Segmentation, options: PseudoMaskOptions) -> list[np.ndarray]:
    """Per-segment features for the options' modality (two arrays for ``both``)."""
    labels, count, pairs = segmentation.labels, segmentation.num_segments, segmentation.adjacency
    if options.modality == "handcrafted":
        return [handcrafted_segment_features(scene, labels, count, pairs)]
    modalities = []
    if options.modality in ("3d", "both"):
        from unscene3d.features.features3d import extract_vertex_features

        vertex_3d = extract_vertex_features(options.checkpoint, scene, device=options.device)
        modalities.append(pool_segment_features(vertex_3d, labels, count, pairs))
    if options.modality in ("2d", "both"):
        from unscene3d.features.features2d import encoder_vertex_features

        vertex_2d = encoder_vertex_features(
            scene, options.encoder, frame_step=options.frame_step, device=options.device
        )
        modalities.append(pool_segment_features(vertex_2d, labels, count, pairs))
    return modalities


def pseudo_masks_for_scene(scene: Scene, options: PseudoMaskOptions) -> PseudoMasks:
    """Oversegment ``scene``, pool features, run the masked NCut."""
    if options.modality in ("2d", "both") and not scene.frames:
        raise InputError(
            scene.source or scene.name, f"modality {options.modality} needs posed colour frames; the scan has none"
        )
    segmentation = segment_scene(scene)
    features = segment_features(scene, segmentation, options)
    config = options.ncut_config()
    result = masked_ncut(features, segmentation.adjacency, config)
    params = {
        "format_version": FORMAT_VERSION,
        "modality": options.modality,
        "checkpoint": options.checkpoint,
        "encoder": options.encoder,
        "oversegmentation": segmentation.params,
        "ncut": asdict(config),
        "cuts": result.iterations,
        "rejected": result.rejected,
        "eigenvalues": result.eigenvalues.tolist(),
    }
    source = Path(scene.source).resolve() if scene.source is not None else None
    return PseudoMasks(scene.name, segmentation.labels, result.masks, result.scores(), params, source)


def write_pseudo_masks(out_dir: str | Path, masks: PseudoMasks, scene: Scene | None = None) -> Path:
    """Write the benchmark files (and, given the ``scene``, its ``<scene>_instances.ply`` coloured by mask),
    then ``<scene>.npz`` (atomically, last); return the ``.npz`` path."""
    out_dir = Path(out_dir)
    vertex_masks = masks.vertex_masks()
    if scene is not None:
        write_instances_ply(out_dir / f"{masks.scene_name}{INSTANCES_PLY_SUFFIX}", scene, vertex_masks, masks.scores)
    export_predictions(out_dir, masks.scene_name, vertex_masks, masks.scores)
    path = out_dir / f"{masks.scene_name}.npz"
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                segment_labels=masks.segment_labels.astype(np.int32),
                segment_masks=masks.segment_masks.astype(bool),
                scores=masks.scores.astype(np.float64),
                params=np.array(json.dumps(masks.params)),
                scan_path=np.array("" if masks.scan_path is None else str(masks.scan_path)),
            )
    return path


def read_pseudo_masks(path: str | Path) -> PseudoMasks:
    """Read a ``<scene>.npz`` written by :func:`write_pseudo_masks`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            labels = data["segment_labels"].astype(np.int64)
            masks = data["segment_masks"].astype(bool)
            scores = data["scores"].astype(np.float64)
            params = json.loads(str(data["params"]))
            scan_path = str(data["scan_path"]) if "scan_path" in data.files else ""
    except (OSError, KeyError, ValueError) as error:
        raise InputError(path, f"not a pseudo-mask file: {error}") from None
    if masks.ndim != 2 or len(scores) != len(masks) or (len(labels) and labels.max() >= masks.shape[1]):
        raise InputError(path, "inconsistent pseudo-mask arrays")
    return PseudoMasks(path.stem, labels, masks, scores, params, Path(scan_path) if scan_path else None)


def _process_scan(scan: str, out_dir: str, options: PseudoMaskOptions, threads: int | None) -> tuple[str, int, float]:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from unscene3d.io.scan import load_scan

    start = time.perf_counter()
    load_frames = options.modality in ("2d", "both")
    scene = load_scan(scan, load_frames=load_frames)
    masks = pseudo_masks_for_scene(scene, options)
    write_pseudo_masks(out_dir, masks, scene)
    return scene.name, len(masks.scores), time.perf_counter() - start


def run_pseudo_masks(
    scans: Sequence[str | Path],
    out_dir: str | Path,
    options: PseudoMaskOptions,
    *,
    workers: int = 1,
    force: bool = False,
) -> list[Path]:
    """Pseudo masks for every scan (``expand_scan_paths`` rules) into ``out_dir``; returns the ``.npz`` files.

    Scans whose ``.npz`` exists are skipped unless ``force``. ``workers`` > 1 runs scans in parallel
    processes (each limited to ``cpu_count // workers`` torch threads).
    """
    from unscene3d.io.scan import scan_name

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_scans = expand_scan_paths(scans)
    outputs = [out_dir / f"{scan_name(s)}.npz" for s in all_scans]
    todo = [str(s) for s, out in zip(all_scans, outputs) if force or not out.exists()]
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

    if workers <= 1:
        for done, scan in enumerate(todo, 1):
            report(done, *_process_scan(scan, str(out_dir), options, None))
        return outputs
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_process_scan, scan, str(out_dir), options, threads) for scan in todo]
        for done, future in enumerate(as_completed(futures), 1):
            report(done, *future.result())
    return outputs
