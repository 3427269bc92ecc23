"""Self-training the model of objects on a user's unlabelled scans: does a round beat its start?

The "user's scans" are scenes whose labels the self-training never sees: generated scan-like scenes
(``--scanlike``, at validation seeds no ranker trains on; the shipped ranker learnt from rooms, so they are a
domain shift that needs no real scan to measure) and, separately, the real scans in ../shared (``--real``; the
two together, as one user's scans). Each setting self-trains the ranker with
:func:`unscene3d.proposals.self_training.self_train_round` (``fit``'s ranker rounds), every round from the
previous one, generated rooms replayed:

- ``agreement``: the default: confident masks are those the ranker and both view rankers score >= 0.5; ``ignore``
  targets (candidates no confident mask speaks for carry no weight);
- ``ranker alone``: confident masks are the ranker's own (no views), ``ignore`` targets;
- ``hard``: agreement, but every candidate's target is its IoU with the nearest confident mask.

Also measured: re-standardising the features on the scans at hand (AdaBN-like). AP / AP50 (percent) pooled over
the scan set after each round; labels are used only for that. ``--tuning-seeds`` repeats each setting with other
fine-tuning seeds (a row each).

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
from unscene3d.proposals.ranker import Ranker, load_ranker
from unscene3d.proposals.self_training import SelfTrainingConfig, replay_examples, self_train_round
from unscene3d.proposals.training import build_examples, read_examples, scene_examples, select_examples

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet"
REAL = ("scene0000_00", "scene0011_00")
Scan = tuple[str, dict]  # a scan's name and its cached examples (scene_examples)
SETTINGS = {
    "agreement": SelfTrainingConfig(),
    "ranker alone": SelfTrainingConfig(agreement=False),
    "hard": SelfTrainingConfig(rule="hard"),
}


def figures(ranker: Ranker, scans: list[Scan]) -> str:
    """AP / AP50 (percent) of the ranker's masks, pooled over ``scans``."""
    items = []
    for name, examples in scans:
        masks, scores, kept = select_examples(ranker, examples)
        items.append((name, Instances(masks[kept][:, examples["labels"]], scores[kept]), examples["gt"]))
    overall = evaluate_scenes(items).overall
    return f"{overall['AP']:.1f} / {overall['AP50']:.1f}"


def restandardised(ranker: Ranker, scans: list[Scan], mix: float) -> Ranker:
    features = np.concatenate([examples["features"] for _, examples in scans])
    mean = (1 - mix) * ranker.feature_mean + mix * features.mean(axis=0)
    std = (1 - mix) * ranker.feature_std + mix * np.maximum(features.std(axis=0), 1e-6)
    return replace(ranker, feature_mean=mean, feature_std=std)


def report(title: str, start: Ranker, groups: dict[str, list[Scan]], replay: list[dict], rounds: int,
           tuning_seeds: list[int]) -> None:
    """One table: a row per setting (and fine-tuning seed), a column per scan group and round."""
    all_scans = [examples for group in groups.values() for _, examples in group]
    header = " | ".join(f"{name} r{k}" for k in range(rounds + 1) for name in groups)
    print(f"\n{title}\n| setting | {header} |\n|---|" + "---:|" * (len(groups) * (rounds + 1)))
    for name, setting in SETTINGS.items():
        for seed in tuning_seeds:
            config, ranker, cells = replace(setting, seed=seed), start, []
            for k in range(rounds + 1):
                if k:
                    ranker = self_train_round(ranker, all_scans, replay, config)
                cells += [figures(ranker, group) for group in groups.values()]
            print(f"| {name}, seed {seed} | " + " | ".join(cells) + " |", flush=True)
    for mix in (0.5, 1.0):
        adapted = restandardised(start, [(n, e) for g in groups.values() for n, e in g], mix)
        cells = [figures(adapted, group) for group in groups.values()]
        print(f"| features re-standardised on the scans, mix {mix} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranker", default=None, help="the start (default: the shipped ranker)")
    parser.add_argument("--scanlike", type=int, default=20, help="generated scan-like scenes (0: none)")
    parser.add_argument("--scanlike-seed", type=int, default=900_000)
    parser.add_argument("--real", action="store_true", help="also the real scans in ../shared, self-trained together")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tuning-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/unscene3d-ranker-self-training"))
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    start = load_ranker(args.ranker)
    replay = replay_examples(start, SelfTrainingConfig(), args.cache, args.workers)
    if args.scanlike:
        seeds = list(range(args.scanlike_seed, args.scanlike_seed + args.scanlike))
        paths = build_examples(seeds, args.cache, start.proposals, args.workers, generator="scanlike")
        scans = [(path.stem, read_examples(path)) for path in paths]
        report(f"{len(scans)} generated scan-like scenes (seeds {seeds[0]}-{seeds[-1]}), pooled AP / AP50", start,
               {"scan-like": scans}, replay, args.rounds, args.tuning_seeds)
    if args.real:
        found = [name for name in REAL if (DATA / name).exists()]
        if not found:
            print(f"no real scan under {DATA}: skipped")
            return
        groups = {name: [(name, scene_examples(load_scan(DATA / name, load_gt=True, load_frames=False),
                                               start.proposals))] for name in found}
        report("the real scans, self-trained together, AP / AP50 per scan", start, groups, replay, args.rounds,
               args.tuning_seeds)


if __name__ == "__main__":
    main()
