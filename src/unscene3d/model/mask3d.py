"""The self-training model: the sparse Res16UNet backbone feeding the Mask3D-style query decoder.

The backbone's four finest decoder levels (strides 8, 4, 2, 1) become the decoder's plain-tensor input:
per level the voxel features, voxel-centre coordinates (in fine-voxel units, relative to each scan's
aligned grid origin) and scene column, sorted by scene; and for every fine voxel the voxel holding it at
each level (``floor(c / stride)``, exact because the grid origin is aligned to 16).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from unscene3d.errors import InputError
from unscene3d.instances import Instances
from unscene3d.model.backbone import (
    DECODER_STRIDES,
    BackboneConfig,
    BackboneOutput,
    Res16UNet,
    SparseBatch,
    sparse_input,
)
from unscene3d.model.decoder import DecoderConfig, DecoderOutput, MultiScaleInput, QueryDecoder
from unscene3d.model.postprocess import PostprocessConfig, instances_from_logits
from unscene3d.model.seeding import seeded
from unscene3d.scene import Scene
from unscene3d.voxelize import Voxelization, coarse_voxel_index, scene_point_features, voxelize


@dataclass(frozen=True)
class Mask3DConfig:
    """Backbone and decoder sizes; the decoder reads the backbone's decoder planes (strides 8, 4, 2, 1)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    def __post_init__(self) -> None:
        expected = tuple(self.backbone.planes[4:])
        if tuple(self.decoder.level_channels) != expected:
            raise InputError(
                None, f"decoder level channels {self.decoder.level_channels} do not match the backbone's {expected}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"backbone": self.backbone.to_dict(), "decoder": self.decoder.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mask3DConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(None, f"unknown model settings: {sorted(unknown)}")
        return cls(BackboneConfig.from_dict(data["backbone"]), DecoderConfig.from_dict(data["decoder"]))


@dataclass
class ScanInput:
    """One scan ready for the model: its voxels (``inverse`` maps vertices to voxels) and, optionally,
    its vertices' segments as compact ids 0..S-1 (masks are then predicted per segment)."""

    voxels: Voxelization
    segments: np.ndarray | None = None


def scan_input(scene: Scene, segments: np.ndarray | None, config: Mask3DConfig) -> ScanInput:
    """Voxelise a scene with the model's input channels (:class:`unscene3d.voxelize.InputChannels`)."""
    features = scene_point_features(scene, config.backbone.input_channels)
    # Centred as training centres every view (train.augment.augment_view): the voxel grid then falls on
    # the scan exactly as in training. A grid shifted by a fraction of a voxel changes which points share
    # a voxel, and a model fitted to one scan was measured to lose most of its AP50 under a 5 mm shift.
    centred = scene.vertices - scene.vertices.mean(axis=0)
    voxels = voxelize(centred, features, config.backbone.voxel_size)
    if segments is not None:
        segments = np.asarray(segments, dtype=np.int64).reshape(-1)
        if segments.shape[0] != scene.vertices.shape[0]:
            raise InputError(scene.source or scene.name,
                             f"{segments.shape[0]} segment ids for {scene.vertices.shape[0]} vertices")
        segments = np.unique(segments, return_inverse=True)[1].reshape(-1)  # any labels -> 0..S-1
    return ScanInput(voxels, segments)


def multiscale_input(scans: Sequence[ScanInput], batch: SparseBatch, output: BackboneOutput) -> MultiScaleInput:
    """The decoder's input from the backbone's levels; points are the scans' vertices."""
    levels = output.multiscale()
    device = levels[-1].features.device
    features, coords, scene_column, level_rows = [], [], [], []
    for level, stride in zip(levels, DECODER_STRIDES):
        indices = level.indices.long()
        order = torch.argsort(indices[:, 0], stable=True)  # group each level's voxels by scene
        indices = indices[order]
        features.append(level.features[order])
        coords.append((indices[:, 1:].float() + 0.5) * stride)
        scene_column.append(indices[:, 0])
        level_rows.append(indices.cpu().numpy())

    fine_rows = level_rows[-1]
    fine_to_level: list[list[np.ndarray]] = [[] for _ in levels]
    level_offsets = [0] * len(levels)
    for b in range(len(scans)):
        fine_local = fine_rows[fine_rows[:, 0] == b, 1:]
        for i, (rows, stride) in enumerate(zip(level_rows, DECODER_STRIDES)):
            level_local = rows[rows[:, 0] == b, 1:]
            fine_to_level[i].append(coarse_voxel_index(fine_local, level_local, stride) + level_offsets[i])
            level_offsets[i] += len(level_local)

    # The stride-1 level keeps the input's voxels in input order (submanifold stem, exact inverse convs).
    point_to_fine = np.concatenate([scan.voxels.inverse + offset for scan, offset in zip(scans, batch.offsets)])
    point_segment = None
    if all(scan.segments is not None for scan in scans):
        parts, segment_offset = [], 0
        for scan in scans:
            parts.append(scan.segments + segment_offset)
            segment_offset += int(scan.segments.max()) + 1
        point_segment = torch.from_numpy(np.concatenate(parts)).to(device)
    elif any(scan.segments is not None for scan in scans):
        raise InputError(None, "either every scan of a batch has segments or none has")
    return MultiScaleInput(
        features=features,
        coords=coords,
        batch=scene_column,
        fine_to_level=[torch.from_numpy(np.concatenate(parts)).to(device) for parts in fine_to_level],
        num_scenes=len(scans),
        point_to_fine=torch.from_numpy(point_to_fine).to(device),
        point_segment=point_segment,
    )


class Mask3D(nn.Module):
    """Backbone + query decoder; ``forward`` takes prepared scans and returns every decoder output."""

    def __init__(self, config: Mask3DConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or Mask3DConfig()
        self.backbone = Res16UNet(config.backbone)
        self.decoder = QueryDecoder(config.decoder)

    def forward(self, scans: Sequence[ScanInput], *, point_masks: bool = False) -> DecoderOutput:
        device = next(self.parameters()).device
        batch = sparse_input([scan.voxels for scan in scans], device)
        output = self.backbone(batch.tensor)
        return self.decoder(multiscale_input(scans, batch, output), point_masks=point_masks)


def build_mask3d(config: Mask3DConfig | None = None, *, seed: int | None = None) -> Mask3D:
    """A freshly initialised model (deterministic when ``seed`` is given)."""
    return seeded(lambda: Mask3D(config), seed)


@torch.no_grad()
def predict_scene(
    model: Mask3D,
    scene: Scene,
    segments: np.ndarray | None = None,
    postprocess: PostprocessConfig | None = None,
) -> Instances:
    """Scored instance masks over the scene's vertices (colour optional; segments enable voting)."""
    was_training = model.training
    model.eval()
    try:
        final = model([scan_input(scene, segments, model.config)], point_masks=True).final
    finally:
        model.train(was_training)
    return instances_from_logits(final.class_logits[0], final.point_mask_logits[0], segments, postprocess)
