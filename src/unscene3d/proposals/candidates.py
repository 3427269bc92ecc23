"""Candidate object masks of a scan: many partitions of its segments, pooled.

No single partition finds every object: a fine one splits a sofa into cushions, a coarse one fuses a chair
with its table. AP rewards ranked recall, so the candidates pool several (the proposal-and-rank recipe of
selective search and MCG; in 3D, merging superpoints as SAI3D and Open3DIS do), and a learned score
(:mod:`unscene3d.proposals.ranker`) orders them. Every candidate is a union of the scan's base segments (the
pseudo-mask oversegmentation), so all sources speak in the same units and the segment description
(:mod:`unscene3d.segments`) measures them all:

- **cut tree**: every node of the recursive normalized cut of the spatial segment graph, floor, walls and
  ceiling left out (:func:`unscene3d.pseudo.cuts.cut_tree`), with how cheaply each node was cut off
  (separation) and how well it holds together (cohesion);
- **Felzenszwalb scales**: the ScanNet Segmentator's partition at several ``(k, min_verts)`` scales
  (:func:`unscene3d.oversegment_points.felzenszwalb_scales`, one graph for all), each coarse segment taken as
  the base segments most of whose vertices it holds.

Identical masks from several sources are kept once, remembering every source that gave them: agreement
between scales is itself a sign of an object (a mask that survives a change of scale is stable).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from unscene3d.oversegment_points import felzenszwalb_scales
from unscene3d.pseudo.cuts import CutConfig, cut_tree
from unscene3d.pseudo.graph import GraphConfig, segment_affinity
from unscene3d.scene import Scene
from unscene3d.segments import SegmentedScan

# (k_thresh, min_verts) of the Felzenszwalb sources: from the release segments' k 0.01 up to coarse object-sized
# segments; min_verts counts mesh vertices, or 2 cm voxel points of a cloud.
DEFAULT_SCALES = tuple((k, m) for k in (0.02, 0.05, 0.1, 0.2) for m in (100, 300, 1000))


@dataclass(frozen=True)
class ProposalConfig:
    """Where candidates come from: the Felzenszwalb ``scales`` and the cut tree of the spatial graph (the
    no-weights pseudo masks' graph: contact x colour x convexity, ``graph``; tree constants ``cuts``)."""

    scales: tuple[tuple[float, int], ...] = DEFAULT_SCALES
    cut_tree: bool = True
    graph: GraphConfig = field(default_factory=lambda: GraphConfig(feature_scale=4.0, feature_source="colour"))
    cuts: CutConfig = field(default_factory=CutConfig)

    def to_dict(self) -> dict:
        return {"scales": [list(s) for s in self.scales], "cut_tree": self.cut_tree,
                "graph": vars(self.graph).copy(), "cuts": vars(self.cuts).copy()}

    @classmethod
    def from_dict(cls, data: dict) -> ProposalConfig:
        return cls(scales=tuple((float(k), int(m)) for k, m in data["scales"]), cut_tree=bool(data["cut_tree"]),
                   graph=GraphConfig(**data["graph"]), cuts=CutConfig(**data["cuts"]))


@dataclass(frozen=True)
class Candidates:
    """K distinct candidate masks over a scan's S segments.

    ``from_scale`` (K, len(scales)) says which Felzenszwalb scales gave each mask; ``from_cut`` (K,) whether the
    cut tree did, with the node's ``separation`` and ``cohesion`` (NCut values, 1 where not a tree node).
    ``affinity`` is the spatial graph's (S, S) edge weights, which the features read too."""

    masks: np.ndarray
    from_scale: np.ndarray
    from_cut: np.ndarray
    separation: np.ndarray
    cohesion: np.ndarray
    affinity: scipy.sparse.csr_matrix

    def __len__(self) -> int:
        return len(self.masks)


def majority_segments(base: np.ndarray, coarse: np.ndarray, num_segments: int) -> np.ndarray:
    """(C, S) masks: each coarse segment as the base segments whose vertices lie mostly in it (``base`` and
    ``coarse``: (N,) labels; base labels are 0..S-1). Coarse segments that win no base segment are dropped."""
    coarse = np.unique(coarse, return_inverse=True)[1].reshape(-1)
    pairs, counts = np.unique(base * (int(coarse.max(initial=0)) + 1) + coarse, return_counts=True)
    span = int(coarse.max(initial=0)) + 1
    segment, label = pairs // span, pairs % span
    order = np.lexsort((-counts, segment))  # per base segment, the coarse label holding most of it first
    first = np.unique(segment[order], return_index=True)[1]
    owner = np.zeros(num_segments, dtype=np.int64)
    owner[segment[order][first]] = label[order][first]
    masks = np.zeros((span, num_segments), dtype=bool)
    masks[owner, np.arange(num_segments)] = True
    return masks[masks.any(axis=1)]


def propose(scene: Scene, segments: SegmentedScan, config: ProposalConfig | None = None) -> Candidates:
    """Pool the candidate masks of ``scene`` (described by ``segments``) from every source of ``config``."""
    config = config or ProposalConfig()
    count = segments.num_segments
    affinity = segment_affinity(segments.geometry, segments.contacts, segments.geometry.lab, config.graph)
    masks, scale_of, tree_values = [], [], []
    if config.cut_tree:
        for node in cut_tree(affinity, ~segments.is_structure, config.cuts):
            mask = np.zeros(count, dtype=bool)
            mask[node.segments] = True
            masks.append(mask)
            scale_of.append(-1)
            tree_values.append((node.separation, min(node.cohesion, 1.0)))
    for index, labels in enumerate(felzenszwalb_scales(scene, config.scales)):
        coarse = majority_segments(segments.labels, labels, count)
        masks.extend(coarse)
        scale_of.extend([index] * len(coarse))
        tree_values.extend([(1.0, 1.0)] * len(coarse))
    if not masks:
        empty = np.zeros((0, count), dtype=bool)
        return Candidates(empty, np.zeros((0, len(config.scales)), bool), np.zeros(0, bool), np.zeros(0), np.zeros(0),
                          affinity)
    stacked = np.asarray(masks)
    _, first, inverse = np.unique(np.packbits(stacked, axis=1), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)  # keep candidates in the order they were first proposed
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    unique_of = rank[inverse]
    kept = len(first)
    scale_of = np.asarray(scale_of)
    from_scale = np.zeros((kept, len(config.scales)), dtype=bool)
    on_scale = scale_of >= 0
    from_scale[unique_of[on_scale], scale_of[on_scale]] = True
    from_cut = np.zeros(kept, dtype=bool)
    from_cut[unique_of[~on_scale]] = True
    tree_values = np.asarray(tree_values, dtype=np.float64)
    separation, cohesion = np.ones(kept), np.ones(kept)
    # a mask the tree gave keeps its tree node's values (the first such node if several)
    for position in np.flatnonzero(~on_scale)[::-1]:
        separation[unique_of[position]], cohesion[unique_of[position]] = tree_values[position]
    return Candidates(stacked[np.sort(first)], from_scale, from_cut, separation, cohesion, affinity)
