"""A few labels (the paper's data-efficient setting): the model of objects fine-tuned with the ground truth of
some of a user's scans, ``unscene3d tune-ranker SCANS -o FILE``.

Each labelled scan's candidates get their true targets (the IoU with its objects, exactly as for generated
scenes); the ranker's own members are then trained further on them, with as much weight again on generated
scenes (``replay_scenes`` of the ranker's own training generator, at seeds no ranker trains or validates on) so
that it keeps what it learnt there. The result is a ranker file for ``--ranker`` (``predict``, ``pseudo-masks``)
that records the scans it was tuned on.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from unscene3d.proposals.ranker import Ranker
from unscene3d.proposals.training import (
    TrainingConfig,
    build_examples,
    read_examples,
    scene_examples,
    train_members,
)
from unscene3d.scene import Scene

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuningConfig:
    """How the ranker is fine-tuned (module docstring)."""

    replay_scenes: int = 60
    replay_seed: int = 800_000  # training uses 100000+, validation 900000+, the benchmarks 950000+
    epochs: int = 5
    learning_rate: float = 3e-4
    labelled_weight: float = 1.0  # the labelled scans' total weight, per unit of the replay's
    seed: int = 0


def tune_ranker(start: Ranker, scenes: Sequence[Scene], out: str | Path, config: TuningConfig | None = None, *,
                cache: str | Path | None = None, workers: int = 1) -> Ranker:
    """Fine-tune ``start`` on ``scenes`` (each with its ground truth, ``scene.gt``) and write it to ``out``."""
    config = config or TuningConfig()
    out = Path(out)
    started = time.perf_counter()
    labelled = []
    for scene in scenes:
        examples = scene_examples(scene, start.proposals)
        log.info("%s: %d candidates, %d of them covering an object at IoU >= 0.5", scene.name,
                 len(examples["targets"]), int((examples["targets"] >= 0.5).sum()))
        labelled.append(examples)
    generator = start.info.get("training", {}).get("generator", "rooms")
    seeds = list(range(config.replay_seed, config.replay_seed + config.replay_scenes))
    cache = Path(cache) if cache is not None else out.with_name(out.name + ".examples")
    replay = [read_examples(path) for path in build_examples(seeds, cache, start.proposals, workers, generator)]
    features = np.concatenate([e["features"] for e in labelled + replay])
    targets = np.concatenate([e["targets"] for e in labelled + replay])
    count = sum(len(e["targets"]) for e in labelled)
    weights = np.ones(len(features))
    weights[:count] = config.labelled_weight * (len(features) - count) / max(count, 1)
    training = replace(TrainingConfig(), epochs=config.epochs, learning_rate=config.learning_rate, seed=config.seed,
                       ranker=start.config)
    tuned = train_members(start, features, targets, training, weights=weights, warm_start=True)
    tuned.info = {
        **start.info,
        "tuned": {
            "command": "unscene3d tune-ranker " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["tune-ranker"] else "",
            "scans": [scene.name for scene in scenes],
            "start": str(start.path) if start.path is not None else None,
            "config": asdict(config),
            "generator": generator,
            "seconds": round(time.perf_counter() - started, 1),
        },
    }
    tuned.save(out)
    return tuned
