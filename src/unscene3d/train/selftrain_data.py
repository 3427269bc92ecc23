"""Training data of self-training: scans paired with their pseudo masks, and the augmented step batches.

The pseudo-mask stage writes ``<PSEUDO_DIR>/<scene>.npz`` (segment index per vertex, masks over those
segments, and the path of the scan it read); training pairs each file with a scan given by the user
(matched by scene name) or, by default, with that recorded path.

A step batch takes ``batch_size`` scans, crops each (optional), augments it (rotation, scale, flips,
elastic distortion, colour jitter: :func:`unscene3d.train.augment.augment_view`), renumbers the
segments present in the crop to 0..S-1 and restricts every target mask to them. For the segment model
the scan's segment tokens are measured once (:func:`unscene3d.model.segment_model.segment_tokens`) and a
step augments them instead (:func:`unscene3d.model.segment_model.augment_tokens`: rotation, scale,
mirror, colour and feature noise, segment dropout). The randomness of a step comes from
``numpy.random.default_rng([seed, round, step, rank])`` only, so ``--resume`` replays it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unscene3d.errors import InputError
from unscene3d.model.backbone import BackboneConfig
from unscene3d.model.mask3d import Mask3DConfig, ScanInput
from unscene3d.model.segment_model import (
    SegmentInput,
    SegmentModelConfig,
    SegmentTokens,
    TokenAugment,
    augment_tokens,
    segment_tokens,
)
from unscene3d.pseudo.pipeline import read_pseudo_masks
from unscene3d.scene import Scene
from unscene3d.segments import describe_segments
from unscene3d.train.augment import AugmentConfig, augment_view, random_crop
from unscene3d.voxelize import scene_point_features, voxelize


@dataclass
class SelfTrainScan:
    """One training scan in memory: network inputs per vertex, segment index per vertex (0..S-1), the
    initial pseudo masks over segments and the masks added by densification (same units)."""

    name: str
    scene: Scene
    points: np.ndarray  # (N, 3) float64
    features: np.ndarray  # (N, C) float32 network input
    has_color: bool
    segments: np.ndarray  # (N,) int64
    pseudo_masks: np.ndarray  # (K, S) bool
    added_masks: np.ndarray  # (A, S) bool
    tokens: SegmentTokens | None = None  # the segment model's input (None for the voxel model)

    @property
    def num_segments(self) -> int:
        return int(self.pseudo_masks.shape[1])

    def target_masks(self) -> np.ndarray:
        """(K + A, S) bool: the masks the model learns in the current round."""
        return np.concatenate([self.pseudo_masks, self.added_masks]) if len(self.added_masks) else self.pseudo_masks


def pseudo_mask_files(pseudo_dir: str | Path) -> list[Path]:
    """The ``<scene>.npz`` files of a pseudo-mask folder, sorted by name."""
    pseudo_dir = Path(pseudo_dir)
    if not pseudo_dir.is_dir():
        raise InputError(pseudo_dir, "pseudo-mask folder not found")
    files = sorted(pseudo_dir.glob("*.npz"))
    if not files:
        raise InputError(pseudo_dir, "no <scene>.npz pseudo-mask files (run `unscene3d pseudo-masks` first)")
    return files


def pair_scans(pseudo_dir: str | Path, scan_paths: Sequence[str | Path] = ()) -> list[tuple[Path, Path]]:
    """(npz, scan path) pairs: a scan given in ``scan_paths`` with the file's scene name, else the scan
    path the pseudo-mask stage recorded in the file.

    Raises:
        InputError: a pseudo-mask file whose scan is neither given nor recorded (or recorded but gone),
            or two given scans with one name.
    """
    from unscene3d.io.scan import scan_name

    by_name: dict[str, Path] = {}
    for path in map(Path, scan_paths):
        name = scan_name(path)
        if name in by_name:
            raise InputError(path, f"two scans are named {name!r} (also {by_name[name]})")
        by_name[name] = path
    pairs = []
    for npz in pseudo_mask_files(pseudo_dir):
        scan = by_name.get(npz.stem) or recorded_scan_path(npz)
        if scan is None:
            raise InputError(npz, f"no scan named {npz.stem!r} among the scans given, and the file records none")
        if not scan.exists():
            raise InputError(npz, f"the scan it was made from, {scan}, is gone; pass its new path with --scans")
        pairs.append((npz, scan))
    return pairs


def recorded_scan_path(npz: str | Path) -> Path | None:
    """The scan a pseudo-mask file was made from (None for files that do not record it)."""
    return read_pseudo_masks(npz).scan_path


def make_training_scan(scene: Scene, npz: str | Path, config: Mask3DConfig | SegmentModelConfig) -> SelfTrainScan:
    """Pair a loaded scan with its pseudo-mask file (vertex counts must agree)."""
    pseudo = read_pseudo_masks(npz)
    if len(pseudo.segment_labels) != scene.vertices.shape[0]:
        raise InputError(npz, f"segments for {len(pseudo.segment_labels)} vertices, but the scan "
                              f"{scene.source or scene.name} has {scene.vertices.shape[0]}")
    segments = pseudo.segment_labels.astype(np.int64)
    num_segments = pseudo.instances.num_units
    segment_model = isinstance(config, SegmentModelConfig)
    return SelfTrainScan(
        name=scene.name,
        scene=scene,
        points=np.asarray(scene.vertices, dtype=np.float64),
        features=np.zeros((0, 0), np.float32) if segment_model else scene_point_features(
            scene, config.backbone.input_channels),
        has_color=scene.colors is not None,
        segments=segments,
        pseudo_masks=pseudo.instances.masks,
        added_masks=np.zeros((0, num_segments), dtype=bool),
        tokens=segment_tokens(describe_segments(scene, segments, num_segments)) if segment_model else None,
    )


def load_training_scans(
    pseudo_dir: str | Path,
    scan_paths: Sequence[str | Path],
    config: Mask3DConfig | SegmentModelConfig,
    *,
    load_gt: bool = False,
) -> list[SelfTrainScan]:
    """Load every pseudo-mask file of ``pseudo_dir`` with its scan (see :func:`pair_scans`); ``load_gt`` also
    reads a ScanNet folder's own ground truth (for evaluation; training does not use it)."""
    from unscene3d.io.scan import load_scan

    return [make_training_scan(load_scan(scan, load_frames=False, load_gt=load_gt, **scan_options(npz)), npz, config)
            for npz, scan in pair_scans(pseudo_dir, scan_paths)]


def scan_options(npz: str | Path) -> dict:
    """The ``load_scan`` options (``--up``/``--scale``/``--kind``) the pseudo masks of ``npz`` were made with."""
    return read_pseudo_masks(npz).params.get("scan_options", {})


@dataclass
class StepBatch:
    scans: list[ScanInput] | list[SegmentInput]
    targets: list[torch.Tensor]  # per scan (T_b, S_b) bool over its crop's segments
    names: list[str]

    @property
    def num_targets(self) -> int:
        return int(sum(t.shape[0] for t in self.targets))


def crop_sample(
    scan: SelfTrainScan, rng: np.random.Generator, augment: AugmentConfig, backbone: BackboneConfig,
    min_target_points: int,
) -> tuple[ScanInput, np.ndarray]:
    """One augmented crop of a scan -> (model input with compact crop segments, (T, S_crop) targets)."""
    channels = backbone.input_channels
    keep = random_crop(scan.points, rng, augment.crop_size, augment.min_crop_points)
    points, features = augment_view(scan.points[keep], scan.features[keep], rng, augment, channels)
    if not scan.has_color and channels.color is not None:
        features[:, channels.color] = 0.0  # jitter must not invent colour the scan (and inference) lacks
    present, segments = np.unique(scan.segments[keep], return_inverse=True)
    segments = segments.reshape(-1)
    targets = scan.target_masks()[:, present]
    if len(targets):
        points_per_segment = np.bincount(segments, minlength=len(present))
        targets = targets[(targets * points_per_segment).sum(1) >= min_target_points]
    return ScanInput(voxelize(points, features, backbone.voxel_size), segments), targets


def token_sample(scan: SelfTrainScan, rng: np.random.Generator, augment: TokenAugment) -> tuple[SegmentInput, np.ndarray]:
    """One augmented view of a scan's segment tokens -> (model input, (T, S_kept) targets); a target
    whose segments were all dropped is left out of the step."""
    tokens, keep = augment_tokens(scan.tokens, rng, augment)
    targets = scan.target_masks()[:, keep]
    return SegmentInput(tokens), targets[targets.any(axis=1)]


def make_step_batch(
    scans: Sequence[SelfTrainScan],
    batch_size: int,
    augment: AugmentConfig | TokenAugment,
    model: Mask3DConfig | SegmentModelConfig,
    min_target_points: int,
    rng: np.random.Generator,
) -> StepBatch:
    """``batch_size`` random scans (without replacement when there are enough), cropped and augmented."""
    chosen = rng.choice(len(scans), size=batch_size, replace=len(scans) < batch_size)
    inputs, targets, names = [], [], []
    for index in chosen:
        scan = scans[int(index)]
        if isinstance(model, SegmentModelConfig):
            sample, target = token_sample(scan, rng, augment)
        else:
            sample, target = crop_sample(scan, rng, augment, model.backbone, min_target_points)
        inputs.append(sample)
        targets.append(torch.from_numpy(np.ascontiguousarray(target)))
        names.append(scan.name)
    return StepBatch(inputs, targets, names)
