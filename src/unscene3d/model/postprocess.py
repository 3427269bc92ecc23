"""Turn one scene's decoder output into scored instance masks over its vertices (Mask3D inference rule).

1. Rank every (query, foreground class) pair by its class probability and keep the top ``top_k``
   (with the single foreground class of UnScene3D these are the ``top_k`` most object-like queries).
2. Binarise each chosen mask: with segments, by segment voting (a segment is in the mask when the mean
   mask probability of its vertices exceeds ``vote_threshold``); without, per vertex.
3. Score = class probability x mean mask probability of the vertices inside the binarised mask.

Empty masks are dropped; the rest are returned in descending score order. Optionally (``nms_iou``, off
in the Mask3D rule and the ``paper`` preset), a mask whose IoU with a better-scored kept mask exceeds
``nms_iou`` is dropped: a model trained briefly on sparse pseudo masks predicts one object with several
queries, and each duplicate is a false positive (measured for the segment model in docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from unscene3d.errors import InputError
from unscene3d.instances import Instances


@dataclass(frozen=True)
class PostprocessConfig:
    top_k: int = 100  # (query x class) pairs kept per scene
    vote_threshold: float = 0.5  # a segment (or vertex) is in a mask above this mean probability
    nms_iou: float | None = None  # drop masks overlapping a better one by more than this IoU (None: keep all)


@torch.no_grad()
def instances_from_logits(
    class_logits: torch.Tensor | np.ndarray,
    mask_logits: torch.Tensor | np.ndarray,
    segment_ids: np.ndarray | torch.Tensor | None = None,
    config: PostprocessConfig | None = None,
) -> Instances:
    """Instances of one scene: masks over the vertices, scores in [0, 1] descending, and the ``queries`` field
    (K,) naming the decoder query each mask came from.

    ``class_logits`` (Q, C + 1) with the last column "no object" (C = 1 in UnScene3D);
    ``mask_logits`` (Q, N) per vertex (map per-segment logits to vertices first); ``segment_ids`` (N,)
    any integer labels of the vertices' segments, or None for per-vertex binarisation.
    """
    config = config or PostprocessConfig()
    class_logits = torch.as_tensor(class_logits).float()
    mask_logits = torch.as_tensor(mask_logits).float()
    if class_logits.ndim != 2 or mask_logits.ndim != 2 or class_logits.shape[0] != mask_logits.shape[0]:
        raise InputError(None, f"expected (Q, C+1) class and (Q, N) mask logits, got "
                               f"{tuple(class_logits.shape)} and {tuple(mask_logits.shape)}")
    num_queries, num_columns = class_logits.shape
    num_classes = num_columns - 1
    num_vertices = mask_logits.shape[1]

    class_probs = class_logits.softmax(-1)[:, :num_classes].reshape(-1)
    top = torch.topk(class_probs, min(config.top_k, class_probs.numel())).indices
    queries = top // num_classes
    probs = mask_logits[queries].sigmoid()

    if segment_ids is None:
        binary = probs > config.vote_threshold
    else:
        segment_ids = np.asarray(segment_ids).reshape(-1)
        if segment_ids.shape[0] != num_vertices:
            raise InputError(None, f"{segment_ids.shape[0]} segment ids for {num_vertices} vertices")
        _, compact = np.unique(segment_ids, return_inverse=True)
        compact = torch.from_numpy(compact.reshape(-1)).to(probs.device)
        num_segments = int(compact.max()) + 1 if num_vertices else 0
        sums = probs.new_zeros((probs.shape[0], num_segments)).index_add_(1, compact, probs)
        counts = torch.bincount(compact, minlength=num_segments).to(probs.dtype)
        binary = (sums / counts)[:, compact] > config.vote_threshold

    sizes = binary.sum(1)
    mask_scores = (probs * binary).sum(1) / sizes.clamp(min=1)
    scores = class_probs[top] * mask_scores
    keep = torch.nonzero(sizes > 0).reshape(-1)
    order = keep[torch.argsort(scores[keep], descending=True, stable=True)]
    if config.nms_iou is not None:
        order = order[_iou_nms(binary[order], config.nms_iou)]
    return Instances(binary[order].cpu().numpy(), scores[order].double().cpu().numpy(),
                     queries=queries[order].cpu().numpy().astype(np.int64))


def _iou_nms(masks: torch.Tensor, threshold: float) -> torch.Tensor:
    """Indices (into ``masks``, already in descending score order) that survive greedy IoU NMS."""
    masks = masks.float()
    sizes = masks.sum(1)
    intersection = masks @ masks.T
    iou = intersection / (sizes[:, None] + sizes[None, :] - intersection).clamp(min=1)
    kept: list[int] = []
    for j in range(len(masks)):
        if not kept or bool((iou[j, kept] <= threshold).all()):
            kept.append(j)
    return torch.tensor(kept, dtype=torch.long, device=masks.device)
