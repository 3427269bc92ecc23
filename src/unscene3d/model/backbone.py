"""Res16UNet34C: the sparse-voxel residual UNet of MinkowskiEngine / Mask3D / UnScene3D, on spconv.

Layout (planes 32, 64, 128, 256 | 256, 128, 96, 96; BasicBlocks 2, 3, 4, 6 | 2, 2, 2, 2):

- stem: submanifold conv (kernel 5) to 32 channels at stride 1;
- encoder: four kernel-2 stride-2 convs (each keeping its channel count), each followed by residual
  blocks, giving strides 2, 4, 8, 16;
- decoder: four kernel-2 transposed convs (spconv ``SparseInverseConv3d``: they restore *exactly* the
  encoder's voxels at the finer stride), each concatenated with the encoder's skip at that stride and
  followed by residual blocks, giving strides 8, 4, 2, 1;
- head: a 1x1 linear layer to ``out_channels``.

:class:`BackboneOutput` exposes every decoder level; the stride-2 level (96-d) is the per-vertex feature
of the official pipeline, and the four finest levels feed the self-training query decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from unscene3d.errors import InputError
from unscene3d.model.seeding import seeded
from unscene3d.model.settings import settings_from_dict, settings_to_dict
from unscene3d.model.sparse_backend import spconv_module
from unscene3d.voxelize import ORIGIN_ALIGNMENT, InputChannels, Voxelization, grid_origin

ENCODER_STRIDES = (2, 4, 8, 16)
DECODER_STRIDES = (8, 4, 2, 1)


@dataclass(frozen=True)
class BackboneConfig:
    """Sizes of the network; ``paper()`` is Res16UNet34C as used by UnScene3D / Mask3D."""

    planes: tuple[int, ...] = (32, 64, 128, 256, 256, 128, 96, 96)
    layers: tuple[int, ...] = (2, 3, 4, 6, 2, 2, 2, 2)
    init_dim: int = 32
    stem_kernel: int = 5
    out_channels: int = 32
    use_normals: bool = False
    use_color: bool = True  # False: geometry only (a constant occupancy input channel instead)
    norm: str = "batch"
    bn_momentum: float = 0.02
    voxel_size: float = 0.02

    def __post_init__(self) -> None:
        if len(self.planes) != 8 or len(self.layers) != 8:
            raise InputError(None, "backbone planes and layers need 8 entries (4 encoder + 4 decoder stages)")
        if self.norm not in ("batch", "instance"):
            raise InputError(None, f"unknown norm {self.norm!r}: expected 'batch' or 'instance'")
        if self.stem_kernel % 2 != 1:
            raise InputError(None, f"stem kernel must be odd, got {self.stem_kernel}")

    @property
    def input_channels(self) -> InputChannels:
        return InputChannels(use_color=self.use_color, use_normals=self.use_normals)

    @property
    def in_channels(self) -> int:
        return self.input_channels.count

    @property
    def feature_dim(self) -> int:
        """Channels of the stride-2 decoder level (the per-vertex feature)."""
        return self.planes[6]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (tuples as lists)."""
        return settings_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackboneConfig:
        return settings_from_dict(cls, data, "backbone")


@dataclass
class BackboneOutput:
    """``levels[s]``: the decoder's sparse tensor at stride ``s`` (16 = bottleneck, then 8, 4, 2, 1);
    ``output``: the head at stride 1."""

    levels: dict[int, Any] = field(default_factory=dict)
    output: Any = None

    def multiscale(self) -> list[Any]:
        """The four decoder levels, coarse to fine (strides 8, 4, 2, 1)."""
        return [self.levels[s] for s in DECODER_STRIDES]


class SparseNorm(nn.Module):
    """Batch norm over all voxels, or instance norm over each scan's voxels (batch column of indices)."""

    def __init__(self, channels: int, kind: str, momentum: float) -> None:
        super().__init__()
        self.kind = kind
        if kind == "batch":
            self.norm = nn.BatchNorm1d(channels, momentum=momentum)
        else:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, features: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        if self.kind == "batch":
            return self.norm(features)
        num = int(batch.max().item()) + 1 if batch.numel() else 0
        count = torch.zeros(num, 1, dtype=features.dtype, device=features.device).index_add_(
            0, batch, torch.ones_like(features[:, :1])
        )
        mean = torch.zeros(num, features.shape[1], dtype=features.dtype, device=features.device)
        mean = mean.index_add(0, batch, features) / count
        centred = features - mean[batch]
        var = torch.zeros_like(mean).index_add(0, batch, centred * centred) / count
        return centred / torch.sqrt(var[batch] + 1e-5) * self.weight + self.bias


class BasicBlock(nn.Module):
    """Two 3x3x3 submanifold convs with norm and ReLU, plus the (projected) input."""

    def __init__(self, inplanes: int, planes: int, indice_key: str, config: BackboneConfig) -> None:
        super().__init__()
        spconv = spconv_module()
        self.conv1 = spconv.SubMConv3d(inplanes, planes, 3, bias=False, indice_key=indice_key)
        self.norm1 = SparseNorm(planes, config.norm, config.bn_momentum)
        self.conv2 = spconv.SubMConv3d(planes, planes, 3, bias=False, indice_key=indice_key)
        self.norm2 = SparseNorm(planes, config.norm, config.bn_momentum)
        if inplanes != planes:
            self.project = nn.Linear(inplanes, planes, bias=False)
            self.project_norm = SparseNorm(planes, config.norm, config.bn_momentum)
        else:
            self.project = None

    def forward(self, x):
        batch = x.indices[:, 0].long()
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.norm1(out.features, batch)))
        out = self.conv2(out)
        residual = x.features
        if self.project is not None:
            residual = self.project_norm(self.project(residual), batch)
        return out.replace_feature(torch.relu(self.norm2(out.features, batch) + residual))


class ConvNormReLU(nn.Module):
    def __init__(self, conv: nn.Module, channels: int, config: BackboneConfig) -> None:
        super().__init__()
        self.conv = conv
        self.norm = SparseNorm(channels, config.norm, config.bn_momentum)

    def forward(self, x):
        out = self.conv(x)
        return out.replace_feature(torch.relu(self.norm(out.features, out.indices[:, 0].long())))


class Res16UNet(nn.Module):
    """The sparse UNet; call it on a ``spconv.SparseConvTensor`` from :func:`sparse_input`."""

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or BackboneConfig()
        spconv = spconv_module()
        planes, layers = config.planes, config.layers
        self.stem = ConvNormReLU(
            spconv.SubMConv3d(config.in_channels, config.init_dim, config.stem_kernel, bias=False, indice_key="stem"),
            config.init_dim, config,
        )
        self.down = nn.ModuleList()
        self.encoder = nn.ModuleList()
        channels = config.init_dim
        skip_channels = [config.init_dim]
        for stage, stride in enumerate(ENCODER_STRIDES):
            self.down.append(ConvNormReLU(
                spconv.SparseConv3d(channels, channels, 2, stride=2, bias=False, indice_key=f"down{stride}"),
                channels, config,
            ))
            self.encoder.append(self._blocks(channels, planes[stage], layers[stage], f"subm{stride}"))
            channels = planes[stage]
            skip_channels.append(channels)
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for stage, stride in enumerate(DECODER_STRIDES):
            out_planes = planes[4 + stage]
            self.up.append(ConvNormReLU(
                spconv.SparseInverseConv3d(channels, out_planes, 2, bias=False, indice_key=f"down{stride * 2}"),
                out_planes, config,
            ))
            skip = skip_channels[len(ENCODER_STRIDES) - 1 - stage]
            self.decoder.append(self._blocks(out_planes + skip, out_planes, layers[4 + stage], f"subm{stride}"))
            channels = out_planes
        self.head = nn.Linear(channels, config.out_channels)

    def _blocks(self, inplanes: int, planes: int, count: int, key: str) -> nn.Sequential:
        blocks = [BasicBlock(inplanes if i == 0 else planes, planes, key, self.config) for i in range(count)]
        return nn.Sequential(*blocks)

    def forward(self, x) -> BackboneOutput:
        out = self.stem(x)
        skips = [out]
        for down, blocks in zip(self.down, self.encoder):
            out = blocks(down(out))
            skips.append(out)
        levels = {ENCODER_STRIDES[-1]: out}
        for stage, (up, blocks) in enumerate(zip(self.up, self.decoder)):
            out = up(out)
            skip = skips[len(ENCODER_STRIDES) - 1 - stage]
            # The inverse conv returns the encoder's voxels at this stride in the same order.
            out = blocks(out.replace_feature(torch.cat([out.features, skip.features], dim=1)))
            levels[DECODER_STRIDES[stage]] = out
        return BackboneOutput(levels=levels, output=out.replace_feature(self.head(out.features)))


def build_backbone(config: BackboneConfig | None = None, *, seed: int | None = None) -> Res16UNet:
    """A freshly initialised backbone (deterministic when ``seed`` is given)."""
    return seeded(lambda: Res16UNet(config), seed)


@dataclass
class SparseBatch:
    """Voxelised scans packed for the network; ``origins[b]`` is scan b's aligned grid origin."""

    tensor: Any
    origins: list[np.ndarray]
    offsets: list[int]


def sparse_input(voxelizations: list[Voxelization], device: torch.device | str = "cpu") -> SparseBatch:
    """Pack voxelised scans (``features`` = network input) into one ``SparseConvTensor``.

    Coordinates are shifted per scan to an origin aligned to 16 voxels, so the voxel at stride ``s`` that
    holds fine voxel ``c`` is ``floor((c - origin) / s)``.
    """
    spconv = spconv_module()
    if not voxelizations:
        raise InputError(None, "no scans to pack")
    indices, features, origins, offsets = [], [], [], []
    extent = np.zeros(3, dtype=np.int64)
    offset = 0
    for batch_index, vox in enumerate(voxelizations):
        if vox.num_voxels == 0:
            raise InputError(None, "a scan has no points")
        origin = grid_origin(vox.coords)
        local = vox.coords - origin
        extent = np.maximum(extent, local.max(axis=0) + 1)
        indices.append(np.concatenate([np.full((len(local), 1), batch_index, np.int64), local], axis=1))
        features.append(vox.features)
        origins.append(origin)
        offsets.append(offset)
        offset += vox.num_voxels
    shape = (-(-extent // ORIGIN_ALIGNMENT) * ORIGIN_ALIGNMENT).tolist()
    tensor = spconv.SparseConvTensor(
        torch.from_numpy(np.concatenate(features).astype(np.float32)).to(device),
        torch.from_numpy(np.concatenate(indices).astype(np.int32)).to(device),
        shape,
        len(voxelizations),
    )
    return SparseBatch(tensor=tensor, origins=origins, offsets=offsets)
