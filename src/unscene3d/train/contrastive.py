"""Contrastive objectives over matched voxels of two views: PointContrast InfoNCE and its CSC variant.

PointContrast (Xie et al. 2020): for matched voxel pairs (i in view 1, i' in view 2), the loss is the
cross-entropy of picking i' among all sampled view-2 voxels, with cosine logits divided by a
temperature. Contrastive Scene Contexts (Hou et al. 2021) partitions each anchor's negatives by their
position relative to it (distance shells x azimuth sectors) and averages the InfoNCE over partitions, so
hard, nearby negatives are not drowned out by far ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def sample_matches(
    voxel_a: np.ndarray, voxel_b: np.ndarray, num_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matched voxel pairs from two views of the same points.

    ``voxel_a[i]`` / ``voxel_b[i]`` are the voxels of point i in each view. Returns up to ``num_pairs``
    pairs (voxel in a, voxel in b, a representative point index) in which no voxel of either view
    repeats, so no positive of one anchor is a negative of another.
    """
    order = rng.permutation(len(voxel_a))
    _, first_a = np.unique(voxel_a[order], return_index=True)
    candidates = order[np.sort(first_a)]
    _, first_b = np.unique(voxel_b[candidates], return_index=True)
    points = candidates[np.sort(first_b)][:num_pairs]
    return voxel_a[points], voxel_b[points], points


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, accuracy): row i of ``anchor`` must pick row i of ``positive`` among all rows."""
    logits = _cosine_logits(anchor, positive, temperature)
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = F.cross_entropy(logits, target)
    accuracy = (logits.argmax(dim=1) == target).float().mean()
    return loss, accuracy


def spatial_partitions(positions: torch.Tensor, radius: float, sectors: int) -> torch.Tensor:
    """(P, P) partition id of point j relative to point i: shell (distance < / >= radius) x azimuth sector."""
    offset = positions[None, :, :2] - positions[:, None, :2]
    distance = torch.linalg.norm(positions[None, :, :] - positions[:, None, :], dim=2)
    angle = torch.atan2(offset[..., 1], offset[..., 0]) + math.pi
    sector = torch.clamp((angle / (2 * math.pi) * sectors).long(), max=sectors - 1)
    shell = (distance >= radius).long()
    return shell * sectors + sector


def csc_info_nce(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    positions: torch.Tensor,
    scan_ids: torch.Tensor,
    temperature: float,
    radius: float,
    sectors: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, accuracy) of InfoNCE with negatives partitioned by spatial context (within each scan).

    ``positions`` (P, 3) are the anchors' positions in a shared frame, ``scan_ids`` (P,) which scan each
    pair comes from; negatives from other scans form one further partition.
    """
    logits = _cosine_logits(anchor, positive, temperature)
    count = logits.shape[0]
    partition = spatial_partitions(positions, radius, sectors)
    other_scan = scan_ids[:, None] != scan_ids[None, :]
    partition = torch.where(other_scan, torch.full_like(partition, 2 * sectors), partition)
    eye = torch.eye(count, dtype=torch.bool, device=logits.device)
    positive_logit = logits.diagonal()
    total = logits.new_zeros(())
    terms = 0
    for part in range(2 * sectors + 1):
        member = (partition == part) & ~eye
        has_negatives = member.any(dim=1)
        if not bool(has_negatives.any()):
            continue
        masked = logits.masked_fill(~(member | eye), float("-inf"))
        row_loss = torch.logsumexp(masked, dim=1) - positive_logit
        total = total + row_loss[has_negatives].mean()
        terms += 1
    target = torch.arange(count, device=logits.device)
    accuracy = (logits.argmax(dim=1) == target).float().mean()
    return total / max(terms, 1), accuracy


def _cosine_logits(anchor: torch.Tensor, positive: torch.Tensor, temperature: float) -> torch.Tensor:
    a = F.normalize(anchor.float(), dim=1)
    b = F.normalize(positive.float(), dim=1)
    return a @ b.T / temperature
