"""Self-training the model of objects on a user's unlabelled scans: does a round beat its start?

The "user's scans" are scenes whose labels the self-training never sees: generated scan-like scenes
(``--scanlike``, at validation seeds no ranker trains on; the shipped ranker learnt from rooms, so they are a
domain shift that needs no real scan to measure) and, separately, the real scans in ../shared (``--real``; the
two together, as one user's scans). The ranker is fine-tuned on its own confident masks, every round from the
previous one, with generated rooms replayed as ``tune-ranker`` does (seeds 800000 +, equal total weight):

- ``hard``: every candidate's target is its IoU with the nearest confident mask (0 far from all of them);
- ``ignore``: only candidates that touch a confident mask (IoU > 0.1) get that target, and candidates the ranker
  scores below 0.02 get 0; the rest carry no weight, so objects it is unsure of are not pushed down.

A confident mask is one the ranker's selection keeps with a score of at least ``--confidence``. Also measured:
re-standardising the features on the scans at hand (AdaBN-like). AP50 (percent) pooled over the scan set after
each round; labels are used only for that.

    python benchmarks/ranker_self_training.py [--scanlike 20] [--real] [--rounds 3] [--cache DIR]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from unscene3d.evaluation import evaluate_scenes
from unscene3d.instances import Instances
from unscene3d.io.scan import load_scan
from unscene3d.proposals.ranker import Ranker, load_ranker, select_candidates
from unscene3d.proposals.training import (
    TrainingConfig,
    build_examples,
    read_examples,
    scene_examples,
    train_members,
    unpack_masks,
)
from unscene3d.proposals.tuning import TuningConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet"
REAL = ("scene0000_00", "scene0011_00")
Scan = tuple[str, dict]  # a scan's name and its cached examples (scene_examples)


def ranked(ranker: Ranker, examples: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The scan's candidate masks, segment sizes, scores and the indices the selection keeps."""
    masks = unpack_masks(examples)
    sizes = np.bincount(examples["labels"], minlength=masks.shape[1]).astype(np.float64)
    scores = ranker.score(examples["features"])
    return masks, sizes, scores, select_candidates(masks, scores, sizes, ranker.selection)


def ap50(ranker: Ranker, scans: list[Scan]) -> float:
    items = []
    for name, examples in scans:
        masks, _, scores, kept = ranked(ranker, examples)
        items.append((name, Instances(masks[kept][:, examples["labels"]], scores[kept]), examples["gt"]))
    return evaluate_scenes(items).overall["AP50"]


def best_iou(masks: np.ndarray, others: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(K,) each mask's largest vertex IoU with one of ``others`` (masks over segments of ``sizes`` vertices)."""
    weighted = masks.astype(np.float64) * sizes
    intersection = weighted @ others.T.astype(np.float64)
    union = weighted.sum(1)[:, None] + (others.astype(np.float64) * sizes).sum(1)[None] - intersection
    return (intersection / np.maximum(union, 1e-9)).max(axis=1)


def pseudo_targets(ranker: Ranker, examples: dict, rule: str, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """(targets, weights) of the scan's candidates from the ranker's own confident masks (module docstring)."""
    masks, sizes, scores, kept = ranked(ranker, examples)
    confident = kept[scores[kept] >= confidence]
    targets = np.zeros(len(masks))
    if len(confident):
        targets = best_iou(masks, masks[confident], sizes)
    if rule == "hard":
        return targets, np.ones(len(masks))
    weights = (targets > 0.1).astype(np.float64)
    negative = (scores < 0.02) & (weights == 0)
    targets[negative], weights[negative] = 0.0, 1.0
    return np.where(weights > 0, targets, 0.0), weights


def self_train_round(ranker: Ranker, scans: list[Scan], replay: list[dict], rule: str, confidence: float) -> Ranker:
    pairs = [pseudo_targets(ranker, examples, rule, confidence) for _, examples in scans]
    own_weight = sum(weights.sum() for _, weights in pairs)
    replay_count = sum(len(e["targets"]) for e in replay)
    features = np.concatenate([e["features"] for _, e in scans] + [e["features"] for e in replay])
    targets = np.concatenate([t for t, _ in pairs] + [e["targets"] for e in replay])
    weights = np.concatenate([w * replay_count / max(own_weight, 1.0) for _, w in pairs] + [np.ones(replay_count)])
    tuning = TuningConfig()
    config = replace(TrainingConfig(), epochs=tuning.epochs, learning_rate=tuning.learning_rate, seed=tuning.seed,
                     ranker=ranker.config)
    return train_members(ranker, features, targets, config, weights=weights, warm_start=True)


def restandardised(ranker: Ranker, scans: list[Scan], mix: float) -> Ranker:
    features = np.concatenate([examples["features"] for _, examples in scans])
    mean = (1 - mix) * ranker.feature_mean + mix * features.mean(axis=0)
    std = (1 - mix) * ranker.feature_std + mix * np.maximum(features.std(axis=0), 1e-6)
    return replace(ranker, feature_mean=mean, feature_std=std)


def report(title: str, start: Ranker, groups: dict[str, list[Scan]], replay: list[dict], settings, rounds: int):
    """One table: a row per setting, a column per scan group and round."""
    all_scans = [scan for group in groups.values() for scan in group]
    header = " | ".join(f"{name} r{k}" for k in range(rounds + 1) for name in groups)
    print(f"\n{title}\n| setting | {header} |\n|---|" + "---:|" * (len(groups) * (rounds + 1)))
    for rule, confidence in settings:
        ranker, cells = start, []
        for k in range(rounds + 1):
            if k:
                ranker = self_train_round(ranker, all_scans, replay, rule, confidence)
            cells += [f"{ap50(ranker, group):.1f}" for group in groups.values()]
        print(f"| {rule}, confidence {confidence} | " + " | ".join(cells) + " |", flush=True)
    for mix in (0.5, 1.0):
        adapted = restandardised(start, all_scans, mix)
        cells = [f"{ap50(adapted, group):.1f}" for group in groups.values()]
        print(f"| features re-standardised on the scans, mix {mix} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranker", default=None, help="the start (default: the shipped ranker)")
    parser.add_argument("--scanlike", type=int, default=20, help="generated scan-like scenes (0: none)")
    parser.add_argument("--scanlike-seed", type=int, default=900_000)
    parser.add_argument("--real", action="store_true", help="also the real scans in ../shared, self-trained together")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--confidence", type=float, nargs="*", default=[0.5])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/unscene3d-ranker-self-training"))
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    start = load_ranker(args.ranker)
    tuning = TuningConfig()
    replay_seeds = list(range(tuning.replay_seed, tuning.replay_seed + tuning.replay_scenes))
    replay = [read_examples(p) for p in build_examples(replay_seeds, args.cache, start.proposals, args.workers)]
    settings = [(rule, c) for c in args.confidence for rule in ("hard", "ignore")]
    if args.scanlike:
        seeds = list(range(args.scanlike_seed, args.scanlike_seed + args.scanlike))
        paths = build_examples(seeds, args.cache, start.proposals, args.workers, generator="scanlike")
        scans = [(path.stem, read_examples(path)) for path in paths]
        report(f"{len(scans)} generated scan-like scenes (seeds {seeds[0]}-{seeds[-1]}), pooled AP50", start,
               {"scan-like": scans}, replay, settings, args.rounds)
    if args.real:
        found = [name for name in REAL if (DATA / name).exists()]
        if not found:
            print(f"no real scan under {DATA}: skipped")
            return
        groups = {name: [(name, scene_examples(load_scan(DATA / name, load_gt=True, load_frames=False),
                                               start.proposals))] for name in found}
        report("the real scans, self-trained together, AP50 per scan", start, groups, replay, settings, args.rounds)


if __name__ == "__main__":
    main()
