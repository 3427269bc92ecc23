"""Self-training losses: class cross-entropy, mask BCE and Dice on Hungarian-matched pairs, with DropLoss.

For every decoder output (the final one and each auxiliary one, each matched on its own):

- cross-entropy over {foreground, no-object}: matched queries are foreground, the others no-object,
  the no-object class weighted 0.1 (a weighted mean over all queries of the batch, as ``F.cross_entropy``);
- binary cross-entropy (mean over the mask units) and Dice of each matched pair, summed and divided by
  the number of target masks in the batch (Mask3D's normalisation);
- DropLoss: a matched pair's mask terms count only if the IoU of its binarised prediction
  (``logit > 0``) with its target is at least ``tau_drop``, or if the prediction is empty. DropLoss
  spares a query that found an object the pseudo masks miss; an empty mask found nothing, and
  dropping it would leave it empty for ever (early in training most masks are empty). Dropped pairs still count in the
  normaliser (their loss is dropped, not the others re-weighted) and their query stays foreground for
  the class term. UnScene3D's official code ships with DropLoss off; here it is on by default.

- novel masks (``ignore_novel``, not in the paper; CutLER's idea for sparse pseudo labels): an unmatched
  query whose binarised mask is not empty and has an IoU under ``tau_novel`` with every target leaves
  the class term, instead of being pushed to no-object. The pseudo masks cover only some objects, so
  such a query may have found one they miss.

The total is ``class_weight * CE + bce_weight * BCE + dice_weight * Dice`` summed over decoder outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from unscene3d.model.matcher import FOREGROUND, MatcherConfig, hungarian_match

NO_OBJECT = 1


class MaskPredictionLike(Protocol):
    """What the losses read from a decoder output (see ``unscene3d.model.decoder.MaskPrediction``)."""

    class_logits: torch.Tensor  # (B, Q, 2)
    mask_logits: list[torch.Tensor]  # per scene (Q, M_b)


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and DropLoss settings (UnScene3D: CE x2 with no-object 0.1, BCE x5, Dice x2)."""

    class_weight: float = 2.0
    bce_weight: float = 5.0
    dice_weight: float = 2.0
    no_object_weight: float = 0.1
    drop_loss: bool = True
    tau_drop: float = 0.01  # official: 0.01 with 3D features, 0.1 with 3D + 2D
    ignore_novel: bool = False
    tau_novel: float = 0.01

    def matcher_config(self) -> MatcherConfig:
        return MatcherConfig(self.class_weight, self.bce_weight, self.dice_weight)


@dataclass
class LossTerms:
    """Unweighted terms of one decoder output, and how many matched pairs DropLoss kept/dropped."""

    ce: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    kept: int
    dropped: int

    def weighted(self, config: LossConfig) -> torch.Tensor:
        return config.class_weight * self.ce + config.bce_weight * self.bce + config.dice_weight * self.dice


def sigmoid_bce(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(K, M) logits and targets -> (K,) binary cross-entropy averaged over the M units."""
    loss = F.binary_cross_entropy_with_logits(mask_logits, targets.to(mask_logits.dtype), reduction="none")
    return loss.mean(1)


def dice_loss(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(K, M) logits and targets -> (K,) soft Dice loss ``1 - (2 sum(p t) + 1) / (sum p + sum t + 1)``."""
    probs = mask_logits.sigmoid()
    targets = targets.to(probs.dtype)
    numerator = 2.0 * (probs * targets).sum(1)
    denominator = probs.sum(1) + targets.sum(1)
    return 1.0 - (numerator + 1.0) / (denominator + 1.0)


@torch.no_grad()
def binary_mask_iou(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(K, M) logits and targets -> (K,) IoU of ``logit > 0`` with the target (0 when both are empty)."""
    predicted = mask_logits > 0
    targets = targets.bool()
    intersection = (predicted & targets).sum(1).float()
    union = (predicted | targets).sum(1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.zeros_like(union))


@torch.no_grad()
def drop_loss_keep(mask_logits: torch.Tensor, targets: torch.Tensor, tau_drop: float) -> torch.Tensor:
    """(K,) bool: which matched pairs keep their mask losses under DropLoss (IoU >= tau_drop, or an
    empty predicted mask)."""
    empty = ~(mask_logits > 0).any(1)
    return (binary_mask_iou(mask_logits, targets) >= tau_drop) | empty


@torch.no_grad()
def novel_queries(mask_logits: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], labels: torch.Tensor,
                  tau_novel: float) -> torch.Tensor:
    """(B, Q) bool: unmatched queries with a non-empty mask whose IoU with every target is under ``tau_novel``."""
    novel = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for b, (logits_b, targets_b) in enumerate(zip(mask_logits, targets)):
        predicted = (logits_b > 0).float()
        if targets_b.shape[0]:
            target = targets_b.float()
            intersection = predicted @ target.T
            union = predicted.sum(1, keepdim=True) + target.sum(1)[None] - intersection
            best = (intersection / union.clamp(min=1)).max(dim=1).values
        else:
            best = torch.zeros(predicted.shape[0], device=predicted.device)
        novel[b] = (labels[b] == NO_OBJECT) & (predicted.sum(1) > 0) & (best < tau_novel)
    return novel


def output_losses(
    prediction: MaskPredictionLike,
    targets: Sequence[torch.Tensor],
    config: LossConfig,
    num_masks: float | None = None,
) -> LossTerms:
    """Match and compute the loss terms of one decoder output.

    ``targets[b]`` (T_b, M_b) bool over the same units as ``prediction.mask_logits[b]``.
    ``num_masks`` is the normaliser of the mask terms (default: the batch's number of targets, at least
    1; pass the all-ranks average under DDP).
    """
    class_logits = prediction.class_logits
    num_scenes, num_queries = class_logits.shape[:2]
    if len(targets) != num_scenes or len(prediction.mask_logits) != num_scenes:
        raise ValueError(f"expected {num_scenes} scenes of targets and masks, got {len(targets)}")
    matcher = config.matcher_config()
    labels = torch.full((num_scenes, num_queries), NO_OBJECT, dtype=torch.long, device=class_logits.device)
    matched_logits, matched_targets = [], []
    for b, (logits_b, targets_b) in enumerate(zip(prediction.mask_logits, targets)):
        if targets_b.ndim != 2 or targets_b.shape[1] != logits_b.shape[1]:
            raise ValueError(f"scene {b}: targets {tuple(targets_b.shape)} are not over the {logits_b.shape[1]} "
                             "mask units of the prediction")
        query_idx, target_idx = hungarian_match(class_logits[b], logits_b, targets_b, matcher)
        labels[b, torch.from_numpy(query_idx).to(labels.device)] = FOREGROUND
        matched_logits.append(logits_b[torch.from_numpy(query_idx).to(logits_b.device)])
        matched_targets.append(targets_b[torch.from_numpy(target_idx).to(targets_b.device)])

    class_weights = torch.ones(2, dtype=class_logits.dtype, device=class_logits.device)
    class_weights[NO_OBJECT] = config.no_object_weight
    if config.ignore_novel:
        # per-query weights: F.cross_entropy's weighted mean, with novel queries weighing nothing
        weights = class_weights[labels] * ~novel_queries(prediction.mask_logits, targets, labels, config.tau_novel)
        per_query = F.cross_entropy(class_logits.reshape(-1, 2), labels.reshape(-1), reduction="none")
        ce = (per_query * weights.reshape(-1)).sum() / weights.sum().clamp(min=1e-12)
    else:
        ce = F.cross_entropy(class_logits.reshape(-1, 2), labels.reshape(-1), weight=class_weights)

    if num_masks is None:
        num_masks = max(float(sum(int(t.shape[0]) for t in targets)), 1.0)
    bce = class_logits.new_zeros(())
    dice = class_logits.new_zeros(())
    kept = dropped = 0
    for logits_b, targets_b in zip(matched_logits, matched_targets):
        if logits_b.shape[0] == 0:
            continue
        bce_pairs = sigmoid_bce(logits_b, targets_b)
        dice_pairs = dice_loss(logits_b, targets_b)
        if config.drop_loss:
            keep = drop_loss_keep(logits_b, targets_b, config.tau_drop).to(bce_pairs.dtype)
            kept += int(keep.sum().item())
            dropped += int(keep.numel() - keep.sum().item())
            bce_pairs = bce_pairs * keep
            dice_pairs = dice_pairs * keep
        else:
            kept += int(logits_b.shape[0])
        bce = bce + bce_pairs.sum()
        dice = dice + dice_pairs.sum()
    return LossTerms(ce=ce, bce=bce / num_masks, dice=dice / num_masks, kept=kept, dropped=dropped)


def set_criterion(
    predictions: Sequence[MaskPredictionLike],
    targets: Sequence[torch.Tensor],
    config: LossConfig | None = None,
    num_masks: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total weighted loss summed over every decoder output (auxiliary ones included), and a log dict
    with the final output's terms, the total and DropLoss's kept/dropped counts over all outputs."""
    config = config or LossConfig()
    if not predictions:
        raise ValueError("no decoder outputs to compute losses on")
    total = None
    kept = dropped = 0
    terms = None
    for prediction in predictions:
        terms = output_losses(prediction, targets, config, num_masks)
        weighted = terms.weighted(config)
        total = weighted if total is None else total + weighted
        kept += terms.kept
        dropped += terms.dropped
    log = {
        "loss": float(total.detach()),
        "loss_ce": float(terms.ce.detach()),
        "loss_bce": float(terms.bce.detach()),
        "loss_dice": float(terms.dice.detach()),
        "drop_kept": float(kept),
        "drop_dropped": float(dropped),
    }
    return total, log

