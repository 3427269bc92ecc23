"""Mask3D-style query decoder on plain multi-scale tensors (no sparse-conv types, so it is testable alone).

Queries are non-parametric: positions picked by furthest-point sampling over each scene's finest voxels,
Fourier-encoded and passed through an MLP; their content starts at zero. The decoder makes
``num_passes`` passes over the feature levels (coarse to fine) with the same weights every pass; at each
level one layer does masked cross-attention to that level's voxels, then self-attention among the
queries, then a feed-forward block (post-norm, as Mask3D). Before every layer the current queries
predict masks; the attention mask of the layer is ``sigmoid(mask) < 0.5`` of that prediction averaged
onto the level's voxels, and a query whose row would be fully masked attends everywhere instead.

Mask logits: mask features (a linear map of the finest level) are mean-pooled per segment and dotted
with each query's mask embedding; without segments the units are the points themselves. Every
prediction (the ``num_passes * num_levels`` auxiliary ones and the final one) is returned for the losses.

Batches hold scenes of different sizes: every per-voxel tensor concatenates the scenes in order with a
``batch`` column, and keys are padded per scene with masked slots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unscene3d.errors import InputError
from unscene3d.model.settings import settings_from_dict, settings_to_dict


@dataclass(frozen=True)
class DecoderConfig:
    """Sizes of the decoder. ``level_channels`` are the backbone levels it reads, coarse to fine (the
    last one also feeds the mask features); ``sample_sizes`` bound the keys per scene and level in
    training (all voxels are used in evaluation)."""

    level_channels: tuple[int, ...] = (256, 128, 96, 96)
    hidden_dim: int = 128
    num_heads: int = 8
    ffn_dim: int = 1024
    dropout: float = 0.0
    num_queries: int = 100
    num_passes: int = 3
    sample_sizes: tuple[int, ...] = (200, 800, 3200, 12800)
    # Keys per scene and level in evaluation: None = every voxel (Mask3D); a bound takes evenly spaced
    # voxels (deterministic) to cap memory and time on large scans.
    eval_sample_sizes: tuple[int, ...] | None = None
    fourier_scale: float = 1.0

    def __post_init__(self) -> None:
        for sizes in (self.sample_sizes, self.eval_sample_sizes):
            if sizes is not None and len(sizes) != len(self.level_channels):
                raise InputError(None, "decoder needs one sample size per feature level")
        if self.hidden_dim % self.num_heads or self.hidden_dim % 2:
            raise InputError(None, f"hidden size {self.hidden_dim} must be even and divisible by the heads")
        if self.num_queries < 1 or self.num_passes < 1:
            raise InputError(None, "decoder needs at least one query and one pass")

    @property
    def num_levels(self) -> int:
        return len(self.level_channels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (tuples as lists)."""
        return settings_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecoderConfig:
        return settings_from_dict(cls, data, "decoder")


@dataclass
class MultiScaleInput:
    """The backbone's levels as plain tensors, scenes concatenated in order.

    ``features[l]`` (V_l, C_l), ``coords[l]`` (V_l, 3) float positions (any frame shared by a scene's
    levels, e.g. voxel centres), ``batch[l]`` (V_l,) int64 scene of each voxel (non-decreasing),
    ``fine_to_level[l]`` (V_fine,) int64 voxel of level ``l`` holding each finest voxel (the last level is
    the finest). ``point_to_fine`` (P,) maps the points (e.g. mesh vertices) to finest voxels; None
    means the points are the finest voxels. ``point_segment`` (P,) is each point's segment, numbered
    globally (scene b's segments after scene b-1's, every id used); None means masks over points.
    """

    features: list[torch.Tensor]
    coords: list[torch.Tensor]
    batch: list[torch.Tensor]
    fine_to_level: list[torch.Tensor]
    num_scenes: int
    point_to_fine: torch.Tensor | None = None
    point_segment: torch.Tensor | None = None


@dataclass
class MaskPrediction:
    """One decoder output: ``class_logits`` (B, Q, 2) over (foreground, no-object); ``mask_logits[b]``
    (Q, M_b) over scene b's segments (or finest voxels); ``point_mask_logits[b]`` (Q, P_b), each point
    with its segment's (voxel's) logits, on the final output when asked for."""

    class_logits: torch.Tensor
    mask_logits: list[torch.Tensor]
    point_mask_logits: list[torch.Tensor] | None = None


@dataclass
class DecoderOutput:
    predictions: list[MaskPrediction]
    query_positions: torch.Tensor  # (B, Q, 3) in the input coordinate frame
    attention_masks: list[torch.Tensor] | None = None  # per layer (B, Q, K) bool, True = blocked

    @property
    def final(self) -> MaskPrediction:
        return self.predictions[-1]

    @property
    def auxiliary(self) -> list[MaskPrediction]:
        return self.predictions[:-1]


def furthest_point_sampling(points: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of ``count`` points, each the furthest from those already picked, starting at index 0
    (deterministic). With fewer than ``count`` points the order repeats cyclically."""
    num_points = points.shape[0]
    if num_points == 0:
        raise InputError(None, "cannot sample query positions from an empty scene")
    picked = torch.empty(min(count, num_points), dtype=torch.long, device=points.device)
    distance = torch.full((num_points,), float("inf"), dtype=points.dtype, device=points.device)
    current = 0
    for i in range(picked.numel()):
        picked[i] = current
        distance = torch.minimum(distance, ((points - points[current]) ** 2).sum(1))
        current = int(torch.argmax(distance))
    if count > num_points:
        picked = picked[torch.arange(count, device=points.device) % num_points]
    return picked


class FourierEncoding(nn.Module):
    """Random Fourier features of positions normalised to [0, 1]: ``[sin(2 pi x B), cos(2 pi x B)]``."""

    def __init__(self, in_dim: int, out_dim: int, scale: float) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.randn(in_dim, out_dim // 2) * scale)

    def forward(self, normalised: torch.Tensor) -> torch.Tensor:
        projected = 2.0 * math.pi * normalised @ self.frequencies
        return torch.cat([projected.sin(), projected.cos()], dim=-1)


class CrossAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, query_pos: torch.Tensor, keys: torch.Tensor, key_pos: torch.Tensor,
                blocked: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(queries + query_pos, keys + key_pos, keys, attn_mask=blocked, need_weights=False)
        return self.norm(queries + attended)


class SelfAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        with_pos = queries + query_pos
        attended, _ = self.attention(with_pos, with_pos, queries, need_weights=False)
        return self.norm(queries + attended)


class FeedForwardLayer(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        return self.norm(queries + self.net(queries))


def _mlp(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))


def _scatter_mean(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Row means of ``values`` grouped by ``index`` into ``size`` rows (empty groups are zero)."""
    sums = values.new_zeros((size, values.shape[1])).index_add_(0, index, values)
    counts = torch.bincount(index, minlength=size).clamp(min=1).to(values.dtype)
    return sums / counts[:, None]


@dataclass
class _Layout:
    """Per-scene sizes and offsets derived once per forward pass."""

    level_counts: list[list[int]]  # [level][scene]
    level_offsets: list[list[int]]
    point_to_fine: torch.Tensor  # (P,)
    point_counts: list[int]
    level_pooling: list[torch.Tensor]  # [level] sparse (V_level, U): point-weighted mean of unit values
    segment_counts: list[int] | None
    local_segment: torch.Tensor | None  # (P,) segment index within its scene


def _pooling_matrix(point_voxel: torch.Tensor, point_unit: torch.Tensor, num_voxels: int, num_units: int) -> torch.Tensor:
    """Sparse (num_voxels, num_units) matrix W with ``W @ unit_values`` = the mean over each voxel's points
    of their unit's value (so unit logits become voxel logits without a per-point tensor)."""
    pairs = point_voxel * num_units + point_unit
    unique_pairs, pair_counts = torch.unique(pairs, return_counts=True)
    voxel = unique_pairs // num_units
    points_per_voxel = torch.bincount(point_voxel, minlength=num_voxels).clamp(min=1)
    weights = pair_counts.float() / points_per_voxel[voxel].float()
    indices = torch.stack([voxel, unique_pairs % num_units])
    return torch.sparse_coo_tensor(indices, weights, (num_voxels, num_units), check_invariants=False).coalesce()


def _offsets(counts: list[int]) -> list[int]:
    out, total = [], 0
    for c in counts:
        out.append(total)
        total += c
    return out


def _layout(inputs: MultiScaleInput, num_levels: int) -> _Layout:
    """Check the input's structure and derive the per-scene sizes and the level pooling matrices."""
    if not (len(inputs.features) == len(inputs.coords) == len(inputs.batch) == len(inputs.fine_to_level) == num_levels):
        raise InputError(None, f"decoder expects {num_levels} feature levels with coords, batch and fine_to_level")
    scenes = inputs.num_scenes
    level_counts = [torch.bincount(b, minlength=scenes).tolist() for b in inputs.batch]
    for level, (counts, batch) in enumerate(zip(level_counts, inputs.batch)):
        if min(counts) == 0:
            raise InputError(None, f"a scene has no voxels at decoder level {level}")
        if batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
            raise InputError(None, f"voxels of decoder level {level} must be grouped by scene, in scene order")
    fine_batch = inputs.batch[-1]
    point_to_fine = inputs.point_to_fine
    if point_to_fine is None:
        point_to_fine = torch.arange(fine_batch.numel(), device=fine_batch.device)
    point_batch = fine_batch[point_to_fine]
    if point_batch.numel() > 1 and bool((point_batch[1:] < point_batch[:-1]).any()):
        raise InputError(None, "points must be grouped by scene, in scene order")
    point_counts = torch.bincount(point_batch, minlength=scenes).tolist()
    segment_counts = local_segment = None
    if inputs.point_segment is not None:
        segments = inputs.point_segment
        num_segments = int(segments.max()) + 1 if segments.numel() else 0
        segment_batch = torch.zeros(num_segments, dtype=torch.long, device=segments.device)
        segment_batch[segments] = point_batch
        counts = torch.bincount(segment_batch, minlength=scenes)
        segment_counts = counts.tolist()
        local_segment = segments - torch.tensor(_offsets(segment_counts), device=segments.device)[point_batch]
        in_own_scene = (local_segment >= 0) & (local_segment < counts[point_batch])
        if torch.unique(segments).numel() != num_segments or not bool(in_own_scene.all()):
            raise InputError(None, "segment ids must be numbered 0..S-1 over the batch, scene by scene, every id used")
        unit_of_point, num_units = segments, num_segments
    else:
        unit_of_point, num_units = point_to_fine, fine_batch.numel()
    return _Layout(
        level_counts=level_counts,
        level_offsets=[_offsets(c) for c in level_counts],
        point_to_fine=point_to_fine,
        point_counts=point_counts,
        level_pooling=[
            _pooling_matrix(f2l[point_to_fine], unit_of_point, len(f2l_batch), num_units)
            for f2l, f2l_batch in zip(inputs.fine_to_level, inputs.batch)
        ],
        segment_counts=segment_counts,
        local_segment=local_segment,
    )


class QueryDecoder(nn.Module):
    """Mask3D's transformer decoder; call it on a :class:`MultiScaleInput`."""

    def __init__(self, config: DecoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DecoderConfig()
        dim = config.hidden_dim
        self.level_projections = nn.ModuleList(nn.Linear(c, dim) for c in config.level_channels)
        self.mask_features = nn.Linear(config.level_channels[-1], dim)
        self.position_encoding = FourierEncoding(3, dim, config.fourier_scale)
        self.query_projection = _mlp(dim)
        self.cross_attention = nn.ModuleList(
            CrossAttentionLayer(dim, config.num_heads, config.dropout) for _ in range(config.num_levels)
        )
        self.self_attention = nn.ModuleList(
            SelfAttentionLayer(dim, config.num_heads, config.dropout) for _ in range(config.num_levels)
        )
        self.feed_forward = nn.ModuleList(
            FeedForwardLayer(dim, config.ffn_dim, config.dropout) for _ in range(config.num_levels)
        )
        self.output_norm = nn.LayerNorm(dim)
        self.class_head = nn.Linear(dim, 2)
        self.mask_embedding = _mlp(dim)

    def forward(
        self, inputs: MultiScaleInput, *, point_masks: bool = False, keep_attention_masks: bool = False
    ) -> DecoderOutput:
        config = self.config
        layout = _layout(inputs, config.num_levels)
        scenes = inputs.num_scenes

        # Positions normalised per scene to its bounding box, as the Fourier encoding expects [0, 1].
        fine_coords, fine_batch = inputs.coords[-1].float(), inputs.batch[-1]
        fine_offsets = layout.level_offsets[-1]
        lows = torch.stack([fine_coords[fine_batch == b].min(0).values for b in range(scenes)])
        highs = torch.stack([fine_coords[fine_batch == b].max(0).values for b in range(scenes)])
        extent = (highs - lows).clamp(min=1e-6)

        def normalise(coords: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
            return (coords.float() - lows[batch]) / extent[batch]

        keys = [proj(f.float()) for proj, f in zip(self.level_projections, inputs.features)]
        key_pos = [self.position_encoding(normalise(c, b)) for c, b in zip(inputs.coords, inputs.batch)]

        query_index = torch.stack([
            fine_offsets[b] + furthest_point_sampling(
                fine_coords[fine_offsets[b]:fine_offsets[b] + layout.level_counts[-1][b]], config.num_queries
            )
            for b in range(scenes)
        ])
        query_pos = self.query_projection(
            self.position_encoding(normalise(fine_coords[query_index], fine_batch[query_index]))
        )
        queries = torch.zeros_like(query_pos)

        mask_features = self.mask_features(inputs.features[-1].float())
        if layout.local_segment is not None:
            unit_features = _scatter_mean(
                mask_features[layout.point_to_fine], inputs.point_segment, sum(layout.segment_counts)
            )
            unit_counts = layout.segment_counts
        else:
            unit_features = mask_features
            unit_counts = layout.level_counts[-1]
        unit_features = list(torch.split(unit_features, unit_counts))

        predictions: list[MaskPrediction] = []
        attention_masks: list[torch.Tensor] = []
        for _ in range(config.num_passes):
            for level in range(config.num_levels):
                prediction = self._predict(queries, unit_features)
                predictions.append(prediction)
                blocked = self._level_attention_mask(prediction.mask_logits, layout, level)
                sample = self._sample_keys(layout, level)
                batched_keys, batched_pos, key_blocked = self._gather_keys(keys[level], key_pos[level], blocked, sample)
                if keep_attention_masks:
                    attention_masks.append(key_blocked)
                heads_blocked = key_blocked.repeat_interleave(config.num_heads, dim=0)
                queries = self.cross_attention[level](queries, query_pos, batched_keys, batched_pos, heads_blocked)
                queries = self.self_attention[level](queries, query_pos)
                queries = self.feed_forward[level](queries)
        final = self._predict(queries, unit_features)
        if point_masks:
            final.point_mask_logits = self._point_logits(final.mask_logits, layout)
        predictions.append(final)
        return DecoderOutput(
            predictions=predictions,
            query_positions=inputs.coords[-1][query_index],
            attention_masks=attention_masks if keep_attention_masks else None,
        )

    def _predict(self, queries: torch.Tensor, unit_features: list[torch.Tensor]) -> MaskPrediction:
        """Class logits (B, Q, 2) and per-scene mask logits (Q, M_b) of the current queries."""
        normed = self.output_norm(queries)
        embeddings = self.mask_embedding(normed)
        mask_logits = [embeddings[b] @ features.T for b, features in enumerate(unit_features)]
        return MaskPrediction(self.class_head(normed), mask_logits)

    @staticmethod
    def _point_logits(mask_logits: list[torch.Tensor], layout: _Layout) -> list[torch.Tensor]:
        """Per scene (Q, P_b): each point takes its segment's (or its fine voxel's) logits."""
        point_offsets = _offsets(layout.point_counts)
        point_logits = []
        for b, logits in enumerate(mask_logits):
            points = slice(point_offsets[b], point_offsets[b] + layout.point_counts[b])
            if layout.local_segment is not None:
                local = layout.local_segment[points]
            else:
                local = layout.point_to_fine[points] - layout.level_offsets[-1][b]
            point_logits.append(logits[:, local])
        return point_logits

    @torch.no_grad()
    def _level_attention_mask(self, mask_logits: list[torch.Tensor], layout: _Layout, level: int) -> torch.Tensor:
        """(V_level, Q) bool: True where the query may NOT attend, i.e. where the sigmoid of the voxel's
        logit (the mean over its points) is below 0.5."""
        unit_logits = torch.cat([logits.detach().T for logits in mask_logits]).float()
        voxel_logits = torch.sparse.mm(layout.level_pooling[level], unit_logits)
        return voxel_logits.sigmoid() < 0.5

    def _sample_keys(self, layout: _Layout, level: int) -> list[torch.Tensor]:
        """Per scene, global voxel indices used as keys: a random bounded subset in training; in evaluation
        all of them, or evenly spaced ones when ``eval_sample_sizes`` bounds them."""
        config = self.config
        device = layout.point_to_fine.device
        samples = []
        for offset, count in zip(layout.level_offsets[level], layout.level_counts[level]):
            if self.training and count > config.sample_sizes[level]:
                samples.append(offset + torch.randperm(count, device=device)[: config.sample_sizes[level]])
            elif not self.training and config.eval_sample_sizes and count > config.eval_sample_sizes[level]:
                spaced = torch.linspace(0, count - 1, config.eval_sample_sizes[level], device=device)
                samples.append(offset + spaced.round().long())
            else:
                samples.append(offset + torch.arange(count, device=device))
        return samples

    def _gather_keys(
        self, keys: torch.Tensor, key_pos: torch.Tensor, blocked: torch.Tensor, samples: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pad each scene's sampled keys to one length -> keys, positions (B, K, H) and blocked (B, Q, K)."""
        scenes, width = len(samples), max(s.numel() for s in samples)
        dim, num_queries = keys.shape[1], blocked.shape[1]
        batched_keys = keys.new_zeros((scenes, width, dim))
        batched_pos = key_pos.new_zeros((scenes, width, dim))
        batched_blocked = torch.ones((scenes, num_queries, width), dtype=torch.bool, device=keys.device)
        for b, index in enumerate(samples):
            n = index.numel()
            batched_keys[b, :n] = keys[index]
            batched_pos[b, :n] = key_pos[index]
            rows = blocked[index].T
            # A query masked out of every real key would get no attention at all: let it see them all.
            rows[rows.all(dim=1)] = False
            batched_blocked[b, :, :n] = rows
        return batched_keys, batched_pos, batched_blocked
