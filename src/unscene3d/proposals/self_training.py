"""Self-training the model of objects on a user's unlabelled scans: ``fit``'s ranker rounds.

The shipped ranker learnt from generated rooms; a user's scans differ from them, and nothing there is labelled.
Each round fine-tunes the ranker on all the scans together, with targets taken from its own most trusted masks:

1. **confident masks**: masks the ranker's selection keeps with a score of at least ``confidence`` that every
   view ranker scores at least as high too (``agreement``). The views read disjoint features
   (:data:`~unscene3d.proposals.features.VIEWS`) and so err differently: on the real scans in ``../shared``,
   of the masks the ranker alone is confident of 60% and 36% cover an object at IoU >= 0.5, of those all three
   agree on 93% and 85% (generated scan-like scenes: 66% -> 86%). Self-training on the ranker's own confident
   masks taught it its mistakes (docs/benchmarks.md).
2. **targets** (``rule``): ``ignore``: a candidate touching a confident mask (IoU > ``touch_iou``) gets its IoU
   with the nearest one as target (so the confident mask's parts and merges rank below it), a candidate the
   ranker scores below ``negative_score`` gets 0, the others no weight: an object the ranker is unsure of is
   not pushed down for lack of a confident mask. ``hard`` (measured, not the default): every candidate's
   target is its IoU with the nearest confident mask.
3. **fine-tuning**: the ranker's members are trained further on these targets, with generated rooms replayed
   at equal total weight (as ``tune-ranker`` does) so that what they learnt there is kept. The views stay as
   they are: they check the ranker, and are not taught by it.

Every round starts from the previous round's ranker and recomputes the confident masks with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.proposals.ranker import Ranker
from unscene3d.proposals.training import (
    TrainingConfig,
    build_examples,
    read_examples,
    select_examples,
    train_members,
    unpack_masks,
)

RULES = ("ignore", "hard")


@dataclass(frozen=True)
class SelfTrainingConfig:
    """How the ranker self-trains (module docstring). Settings chosen on 20 generated scan-like scenes, as a user's
    unlabelled scans (docs/benchmarks.md, "Self-training the model of objects")."""

    rounds: int = 3
    confidence: float = 0.5
    agreement: bool = True  # confident masks need every view ranker's agreement
    rule: str = "ignore"
    touch_iou: float = 0.1
    negative_score: float = 0.02
    replay_scenes: int = 60
    replay_seed: int = 800_000  # = TuningConfig's: seeds no ranker trains or validates on
    scans_weight: float = 1.0  # the user's scans' total weight, per unit of the replayed rooms'
    epochs: int = 5
    learning_rate: float = 3e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if self.rounds < 0:
            raise ValueError(f"rounds must be at least 0, got {self.rounds}")


def _segment_sizes(examples: dict[str, np.ndarray]) -> np.ndarray:
    return np.bincount(examples["labels"], minlength=int(examples["num_segments"])).astype(np.float64)


def confident_masks(ranker: Ranker, examples: dict[str, np.ndarray], config: SelfTrainingConfig) -> np.ndarray:
    """Indices of the scan's candidates (``examples``: :func:`~unscene3d.proposals.training.scan_candidates`)
    trusted as objects, in score order (module docstring, step 1)."""
    if config.agreement and not ranker.views:
        raise InputError(ranker.path, "the ranker has no view rankers, which self-training needs to trust a mask: "
                                      "retrain it with `unscene3d train-ranker`")
    _, scores, kept = select_examples(ranker, examples)
    trusted = scores[kept] >= config.confidence
    if config.agreement:
        for view in ranker.views.values():
            trusted &= view.score(examples["features"][kept]) >= config.confidence
    return kept[trusted]


def nearest_iou(masks: np.ndarray, others: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(K,) each mask's largest vertex IoU with one of ``others`` (masks over segments of ``sizes`` vertices);
    0 when there are no others."""
    if len(others) == 0:
        return np.zeros(len(masks))
    weighted = masks.astype(np.float64) * sizes
    intersection = weighted @ others.T.astype(np.float64)
    union = weighted.sum(1)[:, None] + (others.astype(np.float64) * sizes).sum(1)[None] - intersection
    return (intersection / np.maximum(union, 1e-9)).max(axis=1)


def pseudo_targets(ranker: Ranker, examples: dict[str, np.ndarray], confident: np.ndarray,
                   config: SelfTrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """(targets, weights) of the scan's candidates given its ``confident`` ones (module docstring, step 2)."""
    masks = unpack_masks(examples)
    targets = nearest_iou(masks, masks[confident], _segment_sizes(examples))
    if config.rule == "hard":
        return targets, np.ones(len(masks))
    weights = (targets > config.touch_iou).astype(np.float64)
    negative = (weights == 0) & (ranker.score(examples["features"]) < config.negative_score)
    weights[negative] = 1.0
    return np.where(targets > config.touch_iou, targets, 0.0), weights


def replay_examples(ranker: Ranker, config: SelfTrainingConfig, cache: Path, workers: int = 1) -> list[dict]:
    """The generated rooms replayed in every round (made once into ``cache``, then read from it)."""
    generator = ranker.info.get("training", {}).get("generator", "rooms")
    seeds = list(range(config.replay_seed, config.replay_seed + config.replay_scenes))
    return [read_examples(path) for path in build_examples(seeds, cache, ranker.proposals, workers, generator)]


def self_train_round(ranker: Ranker, scans: Sequence[dict[str, np.ndarray]], replay: Sequence[dict[str, np.ndarray]],
                     config: SelfTrainingConfig) -> Ranker:
    """The ranker after one round on the unlabelled ``scans`` (module docstring), recording what it was made of."""
    confident = [confident_masks(ranker, examples, config) for examples in scans]
    pairs = [pseudo_targets(ranker, examples, trusted, config) for examples, trusted in zip(scans, confident)]
    own_weight = sum(weights.sum() for _, weights in pairs)
    replay_count = sum(len(examples["targets"]) for examples in replay)
    features = np.concatenate([e["features"] for e in scans] + [e["features"] for e in replay])
    targets = np.concatenate([t for t, _ in pairs] + [e["targets"] for e in replay])
    scale = config.scans_weight * max(replay_count, 1) / max(own_weight, 1.0)
    weights = np.concatenate([w * scale for _, w in pairs] + [np.ones(replay_count)])
    training = replace(TrainingConfig(), epochs=config.epochs, learning_rate=config.learning_rate, seed=config.seed,
                       ranker=ranker.config)
    trained = train_members(ranker, features, targets, training, weights=weights, warm_start=True)
    previous = ranker.info.get("self_trained", {})
    trained.info = {**ranker.info, "self_trained": {
        "round": previous.get("round", 0) + 1,
        "config": asdict(config),
        "confident_masks": [len(trusted) for trusted in confident],
    }}
    return trained
