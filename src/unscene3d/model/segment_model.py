"""A segment-level self-training model for CPUs: the scan's segments are the tokens, not voxels.

A room has ~80k vertices and ~80k 2 cm voxels but only a few hundred segments, so a transformer over
segments trains in minutes on a CPU where the voxel UNet needs GPU-days (the superpoint-transformer
design of SPFormer). Per scan, once:

- **tokens**: per-segment measurements (:func:`segment_tokens`): mean normal and its spread, the
  standard deviations along the principal axes, log area, bottom / centroid / top height above the
  floor, Lab colour mean and spread, and which structure (floor, wall, ceiling, none) the segment is;
- **edges**: every pair of touching segments with the number of surface edges crossing their border.

The network (:class:`SegmentModel`): an MLP embeds each token; ``encoder_layers`` layers then each
pass messages along the segment graph (edge features: relative position, distance, normal agreement,
LCCP convexity, contact, colour difference; the cues the pseudo-mask cut uses) and let every segment
attend to every other with a learned per-head penalty on their distance (relative position); the
Mask3D query decoder (:class:`~unscene3d.model.decoder.QueryDecoder`, one level whose units are the
segments, furthest-point-sampled queries over segment centroids) predicts masks over segments.
Matching, losses, DropLoss, densification and post-processing are the voxel model's.

Positions enter only as differences (edges, distances) and through the decoder's per-scan normalised
Fourier encoding, so the model does not depend on where a scan sits; rotations about the up axis
are learned from augmentation (:func:`augment_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from unscene3d.errors import InputError
from unscene3d.instances import Instances
from unscene3d.model.decoder import DecoderConfig, DecoderOutput, MultiScaleInput, QueryDecoder
from unscene3d.model.postprocess import PostprocessConfig, instances_from_logits
from unscene3d.model.seeding import seeded
from unscene3d.segments import CEILING, FLOOR, WALL, SegmentedScan, upper_pairs

# Raw per-segment columns kept by SegmentTokens.raw (before augmentation and normalisation).
RAW_COLUMNS = ("cx", "cy", "cz", "nx", "ny", "nz", "spread", "s1", "s2", "s3", "log_area", "bottom", "top",
               "L", "a", "b", "L_std", "a_std", "b_std", "floor", "wall", "ceiling")
TOKEN_DIM = 21  # network input per token (see _token_features)
EDGE_DIM = 9


@dataclass(frozen=True)
class SegmentModelConfig:
    """Sizes of the segment model. ``decoder.level_channels`` must be ``(hidden_dim,)``."""

    hidden_dim: int = 128
    use_color: bool = True  # False: the colour columns of the tokens and edges are zeroed
    encoder_layers: int = 3
    encoder_heads: int = 4
    ffn_dim: int = 256
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig(
        level_channels=(128,), hidden_dim=128, num_heads=8, ffn_dim=512, num_queries=60, num_passes=3,
        sample_sizes=(100000,), eval_sample_sizes=None))

    def __post_init__(self) -> None:
        if tuple(self.decoder.level_channels) != (self.hidden_dim,):
            raise InputError(None, f"segment model decoder must read one level of {self.hidden_dim} channels")
        if self.hidden_dim % self.encoder_heads:
            raise InputError(None, "hidden size must be divisible by the encoder heads")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings, tagged ``kind: segment`` (the voxel model's have no kind)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "decoder"}
        return {"kind": "segment", **data, "decoder": self.decoder.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentModelConfig:
        known = {f.name for f in fields(cls)} | {"kind"}
        if set(data) - known or data.get("kind") != "segment":
            raise InputError(None, f"not segment model settings: {sorted(set(data) - known) or data.get('kind')}")
        values = {k: v for k, v in data.items() if k not in ("kind", "decoder")}
        return cls(**values, decoder=DecoderConfig.from_dict(data["decoder"]))


@dataclass
class SegmentTokens:
    """One scan's cached segment data: ``raw`` (S, len(RAW_COLUMNS)) float32, ``edges`` (E, 2) int64
    pairs i < j of touching segments with ``contact`` (E,) crossing surface edges."""

    raw: np.ndarray
    edges: np.ndarray
    contact: np.ndarray

    @property
    def num_segments(self) -> int:
        return len(self.raw)

    def subset(self, keep: np.ndarray) -> SegmentTokens:
        """The tokens of the segments ``keep`` (bool), renumbered in order, with the edges among them."""
        index = np.full(len(keep), -1, dtype=np.int64)
        index[keep] = np.arange(int(keep.sum()))
        ends = index[self.edges]
        inside = (ends >= 0).all(axis=1)
        return SegmentTokens(self.raw[keep], ends[inside], self.contact[inside])


def segment_tokens(segments: SegmentedScan) -> SegmentTokens:
    """The segment model's tokens of a scan's described segments (geometry, structure, contacts)."""
    geometry, kinds = segments.geometry, segments.structure.kinds
    pairs, contact = upper_pairs(segments.contacts)
    heights = np.stack([geometry.bottom, geometry.top], axis=1) - geometry.floor
    centroid = geometry.centroid.copy()
    centroid[:, 2] -= geometry.floor
    raw = np.concatenate([
        centroid, geometry.unit_normal, (1.0 - np.linalg.norm(geometry.normal, axis=1))[:, None],
        np.sqrt(geometry.eigenvalues), np.log(geometry.area + 1e-6)[:, None], heights,
        geometry.lab, geometry.lab_std,
        np.stack([kinds == FLOOR, kinds == WALL, kinds == CEILING], axis=1),
    ], axis=1).astype(np.float32)
    return SegmentTokens(raw, pairs, contact)


@dataclass(frozen=True)
class TokenAugment:
    """Segment-level augmentation: rotation about the up axis, scale, mirror, colour and feature noise,
    segment dropout."""

    rotate: bool = True
    scale: tuple[float, float] = (0.9, 1.1)
    mirror: bool = True
    color_noise: float = 3.0  # Lab units, one shift per scan
    feature_noise: float = 0.02  # relative, per token and column
    drop_segments: float = 0.1  # fraction of segments removed (with their target entries)


def augment_tokens(tokens: SegmentTokens, rng: np.random.Generator, augment: TokenAugment) -> tuple[SegmentTokens, np.ndarray]:
    """An augmented copy and the bool mask of the segments it keeps."""
    raw = tokens.raw.copy()
    angle = rng.uniform(0, 2 * np.pi) if augment.rotate else 0.0
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
    if augment.mirror and rng.random() < 0.5:
        rotation = rotation @ np.diag([-1.0, 1.0]).astype(np.float32)
    raw[:, 0:2] = raw[:, 0:2] @ rotation.T
    raw[:, 3:5] = raw[:, 3:5] @ rotation.T
    scale = rng.uniform(*augment.scale)
    raw[:, 0:3] *= scale
    raw[:, 7:10] *= scale
    raw[:, 10] += 2 * np.log(scale)
    raw[:, 11:13] *= scale
    raw[:, 13:16] += rng.normal(0, augment.color_noise, 3)
    raw[:, 6:19] *= 1.0 + rng.normal(0, augment.feature_noise, raw[:, 6:19].shape).astype(np.float32)
    keep = rng.random(len(raw)) >= augment.drop_segments
    if keep.sum() < 2:
        keep[:] = True
    augmented = SegmentTokens(raw, tokens.edges, tokens.contact).subset(keep)
    return augmented, keep


def _without_color(raw: torch.Tensor) -> torch.Tensor:
    """Raw columns with the colour (Lab mean and spread) set to a neutral grey's."""
    raw = raw.clone()
    raw[:, 13:16] = torch.tensor([53.6, 0.0, 0.0], dtype=raw.dtype, device=raw.device)  # Lab of sRGB 128
    raw[:, 16:19] = 0.0
    return raw


def _token_features(raw: torch.Tensor) -> torch.Tensor:
    """(S, TOKEN_DIM) network input from raw columns: no absolute horizontal position."""
    return torch.cat([
        raw[:, 2:3],  # centroid height above the floor
        raw[:, 3:7],  # normal, spread
        raw[:, 7:10] * 4.0,  # extents (std, metres)
        (raw[:, 10:11] + 2.0) / 2.0,  # log area
        raw[:, 11:13],  # bottom, top height
        raw[:, 13:14] / 50.0 - 1.0, raw[:, 14:16] / 50.0,  # Lab
        raw[:, 16:19] / 20.0,
        raw[:, 19:22],  # structure one-hot
        torch.linalg.vector_norm(raw[:, 3:5], dim=1, keepdim=True),  # how vertical the surface is
    ], dim=1)


def _edge_features(raw: torch.Tensor, edges: torch.Tensor, contact: torch.Tensor) -> torch.Tensor:
    """(2E, EDGE_DIM) features of both directions of every edge (rows ``edges[:, 0] -> edges[:, 1]``
    then the reverse)."""
    source = torch.cat([edges[:, 0], edges[:, 1]])
    target = torch.cat([edges[:, 1], edges[:, 0]])
    offset = raw[target, 0:3] - raw[source, 0:3]
    distance = torch.linalg.vector_norm(offset, dim=1, keepdim=True)
    direction = offset / distance.clamp(min=1e-6)
    normal_s, normal_t = raw[source, 3:6], raw[target, 3:6]
    agreement = (normal_s * normal_t).sum(1, keepdim=True)
    # LCCP: convex when (n_s - n_t) . (c_s - c_t) > 0
    convex = ((normal_s - normal_t) * -direction).sum(1, keepdim=True).gt(0).float()
    colour = torch.linalg.vector_norm(raw[target, 13:16] - raw[source, 13:16], dim=1, keepdim=True) / 50.0
    logs = torch.log1p(torch.cat([contact, contact]))[:, None] / 5.0
    return torch.cat([offset, distance, agreement, convex, colour, logs, raw[target, 2:3] - raw[source, 2:3]], dim=1)


class _GraphLayer(nn.Module):
    """Mean of messages from touching segments, then global attention with a distance penalty."""

    def __init__(self, dim: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.message = nn.Sequential(nn.Linear(2 * dim + EDGE_DIM, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.update = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.norm_graph = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.distance_scale = nn.Parameter(torch.linspace(-2.0, 1.0, heads))  # softplus: per-head penalty per metre
        self.norm_attention = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), nn.Linear(ffn, dim))
        self.norm_ffn = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor, source: torch.Tensor, target: torch.Tensor, edge: torch.Tensor,
                distance: torch.Tensor) -> torch.Tensor:
        messages = self.message(torch.cat([h[target], h[source], edge], dim=1))
        pooled = h.new_zeros(h.shape).index_add_(0, source, messages)
        degree = torch.bincount(source, minlength=h.shape[0]).clamp(min=1).to(h.dtype)
        h = self.norm_graph(h + self.update(torch.cat([h, pooled / degree[:, None]], dim=1)))
        bias = -nn.functional.softplus(self.distance_scale)[:, None, None] * distance[None]
        attended, _ = self.attention(h[None], h[None], h[None], attn_mask=bias, need_weights=False)
        h = self.norm_attention(h + attended[0])
        return self.norm_ffn(h + self.ffn(h))


@dataclass
class SegmentInput:
    """One scan (or augmented view) ready for the model."""

    tokens: SegmentTokens


class SegmentModel(nn.Module):
    """Segment-token encoder + Mask3D query decoder; masks are over each scan's segments."""

    def __init__(self, config: SegmentModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SegmentModelConfig()
        dim = config.hidden_dim
        self.embed = nn.Sequential(nn.Linear(TOKEN_DIM, dim), nn.ReLU(), nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.layers = nn.ModuleList(
            _GraphLayer(dim, config.encoder_heads, config.ffn_dim) for _ in range(config.encoder_layers)
        )
        self.decoder = QueryDecoder(config.decoder)

    def encode(self, tokens: SegmentTokens, device: torch.device) -> torch.Tensor:
        raw = torch.from_numpy(tokens.raw).to(device)
        if not self.config.use_color:
            raw = _without_color(raw)
        edges = torch.from_numpy(tokens.edges).to(device)
        contact = torch.from_numpy(tokens.contact).to(device)
        source = torch.cat([edges[:, 0], edges[:, 1]])
        target = torch.cat([edges[:, 1], edges[:, 0]])
        edge = _edge_features(raw, edges, contact)
        distance = torch.cdist(raw[:, 0:3], raw[:, 0:3])
        h = self.embed(_token_features(raw))
        for layer in self.layers:
            h = layer(h, source, target, edge, distance)
        return h

    @torch.no_grad()
    def segment_features(self, tokens: SegmentTokens) -> np.ndarray:
        """(S, hidden) the learned per-segment features the masks are read from (the decoder's mask
        features of the encoded tokens): segments of one object learn to look alike."""
        device = next(self.parameters()).device
        return self.decoder.mask_features(self.encode(tokens, device)).cpu().numpy()

    def forward(self, scans: list[SegmentInput], *, point_masks: bool = False) -> DecoderOutput:
        device = next(self.parameters()).device
        encoded = [self.encode(scan.tokens, device) for scan in scans]
        counts = [len(e) for e in encoded]
        inputs = MultiScaleInput(
            features=[torch.cat(encoded)],
            coords=[torch.cat([torch.from_numpy(s.tokens.raw[:, 0:3]).to(device) for s in scans])],
            batch=[torch.repeat_interleave(torch.arange(len(scans), device=device), torch.tensor(counts, device=device))],
            fine_to_level=[torch.arange(sum(counts), device=device)],
            num_scenes=len(scans),
        )
        return self.decoder(inputs, point_masks=point_masks)


def build_segment_model(config: SegmentModelConfig | None = None, *, seed: int | None = None) -> SegmentModel:
    """A freshly initialised model (deterministic when ``seed`` is given)."""
    return seeded(lambda: SegmentModel(config), seed)


@torch.no_grad()
def predict_segments(
    model: SegmentModel,
    tokens: SegmentTokens,
    segments: np.ndarray,
    postprocess: PostprocessConfig | None = None,
) -> Instances:
    """Scored instance masks over the vertices (``segments``: compact segment index per vertex, the
    segmentation ``tokens`` were measured on)."""
    was_training = model.training
    model.eval()
    try:
        final = model([SegmentInput(tokens)]).final
    finally:
        model.train(was_training)
    segments = np.asarray(segments, dtype=np.int64)
    return instances_from_logits(final.class_logits[0], final.mask_logits[0][:, torch.from_numpy(segments)],
                                 segments, postprocess)
