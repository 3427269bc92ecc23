"""Hungarian matching of query predictions to target masks (Mask3D / Mask2Former style).

The cost of assigning query ``q`` to target ``t`` is

    class_weight * (-p_fg[q]) + bce_weight * BCE(mask_q, target_t) + dice_weight * Dice(mask_q, target_t)

where BCE is the mean binary cross-entropy over the mask units (segments or points) and Dice is
``1 - (2 |p * t| + 1) / (|p| + |t| + 1)`` on the sigmoid probabilities. The assignment minimising the
total cost is found with ``scipy.optimize.linear_sum_assignment``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

FOREGROUND = 0  # class index of "object"; the last index is "no object"


@dataclass(frozen=True)
class MatcherConfig:
    """Weights of the matching cost terms (UnScene3D / Mask3D: 2, 5, 2)."""

    class_weight: float = 2.0
    bce_weight: float = 5.0
    dice_weight: float = 2.0


def pairwise_bce(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(Q, M) logits and (T, M) {0,1} targets -> (Q, T) mean binary cross-entropy over the M units."""
    num_units = mask_logits.shape[1]
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x); summing each against t and 1-t is two matmuls.
    positive = F.softplus(-mask_logits)
    negative = F.softplus(mask_logits)
    targets = targets.to(mask_logits.dtype)
    return (positive @ targets.T + negative @ (1.0 - targets).T) / max(num_units, 1)


def pairwise_dice(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(Q, M) logits and (T, M) {0,1} targets -> (Q, T) soft Dice loss (with +1 smoothing)."""
    probs = mask_logits.sigmoid()
    targets = targets.to(probs.dtype)
    numerator = 2.0 * probs @ targets.T
    denominator = probs.sum(1)[:, None] + targets.sum(1)[None, :]
    return 1.0 - (numerator + 1.0) / (denominator + 1.0)


def matching_cost(
    class_logits: torch.Tensor, mask_logits: torch.Tensor, targets: torch.Tensor, config: MatcherConfig
) -> torch.Tensor:
    """(Q, T) cost matrix for one scene. ``class_logits`` (Q, 2) = (foreground, no-object)."""
    p_foreground = class_logits.softmax(-1)[:, FOREGROUND]
    return (
        config.class_weight * (-p_foreground)[:, None]
        + config.bce_weight * pairwise_bce(mask_logits, targets)
        + config.dice_weight * pairwise_dice(mask_logits, targets)
    )


def assign(cost: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment of a (Q, T) cost matrix -> (query indices, target indices),
    sorted by query. With no targets (or no queries) both are empty."""
    cost = cost.detach().cpu().numpy() if isinstance(cost, torch.Tensor) else np.asarray(cost)
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(cost)
    return rows.astype(np.int64), cols.astype(np.int64)


@torch.no_grad()
def hungarian_match(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    targets: torch.Tensor,
    config: MatcherConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Match one scene's queries to its target masks.

    ``class_logits`` (Q, 2), ``mask_logits`` (Q, M), ``targets`` (T, M) bool/float over the same units.
    Returns ``(query_idx, target_idx)``, each (min(Q, T),) int64.
    """
    config = config or MatcherConfig()
    if targets.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cost = matching_cost(class_logits.float(), mask_logits.float(), targets, config)
    return assign(cost)
