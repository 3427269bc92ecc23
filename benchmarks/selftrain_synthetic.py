"""The paper's self-training claim on a CPU, on synthetic rooms: a table per round like its Table 4.

``unscene3d fit`` (segment preset unless ``--preset``) on the training rooms (default seeds 10-39, their
pseudo masks only: no labels), then every round scored, with the ScanNet class-agnostic protocol, on

- the training rooms: the round's masks as ``fit`` returns them (``union``: pseudo masks + the masks the
  round adds) and the model's own predictions;
- held-out rooms (default seeds 0-9, never trained on): the model's predictions (what ``predict`` gives
  a new scan) and the union of their own pseudo masks with what the round's model adds to them.

The row ``untrained`` is the control: the same masks from an untrained model of the same configuration
(what the union gains from the re-cut alone, without any learning).

``--model-seeds 0 1 2`` repeats the run with other weight / augmentation seeds (single-seed differences of
a few points are noise) and prints each and the mean. Rooms and runs are kept under ``--work``.

    python benchmarks/selftrain_synthetic.py [--rounds 4] [--model-seeds 0 1 2] [--work /tmp/selftrain_synthetic]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from fitbench import pseudo_figures, score_round

from unscene3d.fit import FitOptions, fit
from unscene3d.io.benchmark import write_gt_txt
from unscene3d.io.ply import write_ply
from unscene3d.pseudo.pipeline import PseudoMaskOptions, run_pseudo_masks
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train.selftrain import preset_config
from unscene3d.train.selftrain_data import load_training_scans


def seed_range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def write_rooms(folder: Path, seeds: list[int]) -> None:
    for seed in seeds:
        scene = make_synthetic_scene(seed)
        if not (folder / f"{scene.name}.ply").is_file():
            write_gt_txt(folder / "gt" / f"{scene.name}.txt", scene.gt)
            write_ply(folder / f"{scene.name}.ply", scene.vertices, scene.faces, scene.colors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-seeds", type=seed_range, default=seed_range("10-39"))
    parser.add_argument("--eval-seeds", type=seed_range, default=seed_range("0-9"))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--preset", default="segment")
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/selftrain_synthetic"))
    parser.add_argument("--steps", type=int, default=None, help="round-1 steps (default: the preset's)")
    parser.add_argument("--finetune-steps", type=int, default=None, help="steps of later rounds")
    args = parser.parse_args()

    train_dir, eval_dir = args.work / "train_rooms", args.work / "heldout_rooms"
    write_rooms(train_dir, args.train_seeds)
    write_rooms(eval_dir, args.eval_seeds)
    heldout_pseudo = args.work / "heldout_pseudo"
    run_pseudo_masks([eval_dir], heldout_pseudo, PseudoMaskOptions())
    columns = ("train: union", "train: model", "held out: model", "held out: union")
    results = []
    for model_seed in args.model_seeds:
        run = args.work / f"run_{args.preset}_seed{model_seed}"
        config = preset_config(args.preset, seed=model_seed, steps=args.steps, finetune_steps=args.finetune_steps)
        started = time.perf_counter()
        result = fit([train_dir], run, FitOptions(rounds=args.rounds, config=config, page=False))
        minutes = (time.perf_counter() - started) / 60
        train_scans = load_training_scans(run / "pseudo", [], config.model)
        heldout_scans = load_training_scans(heldout_pseudo, [], config.model)
        pseudo_train = pseudo_figures(train_scans, run / "pseudo")
        pseudo_heldout = pseudo_figures(heldout_scans, heldout_pseudo)
        rows = {"pseudo masks": (pseudo_train, None, None, pseudo_heldout)}
        for index in [0] + result.rounds:
            rows["untrained" if index == 0 else f"round {index}"] = (
                score_round(run, index, train_scans, run / "pseudo", config, "union"),
                score_round(run, index, train_scans, run / "pseudo", config, "model"),
                score_round(run, index, heldout_scans, heldout_pseudo, config, "model"),
                score_round(run, index, heldout_scans, heldout_pseudo, config, "union"),
            )
        results.append(rows)
        print(f"\nmodel seed {model_seed}: fit of {len(args.train_seeds)} rooms, {args.rounds} rounds, "
              f"{minutes:.1f} min (AP / AP50 / AP25, percent)")
        print(f"| {'stage':<13} | " + " | ".join(f"{c:<18}" for c in columns) + " |")
        print("|" + "---|" * (len(columns) + 1))
        for stage, cells in rows.items():
            text = ["-" if c is None else "%.1f / %.1f / %.1f" % c for c in cells]
            print(f"| {stage:<13} | " + " | ".join(f"{t:<18}" for t in text) + " |", flush=True)
    if len(results) > 1:
        print(f"\nmean AP50 over model seeds {args.model_seeds}")
        for stage in results[0]:
            cells = []
            for column in range(len(columns)):
                values = [rows[stage][column][1] for rows in results if rows[stage][column] is not None]
                cells.append("-" if not values else f"{np.mean(values):.1f} (±{np.std(values):.1f})")
            print(f"| {stage:<13} | " + " | ".join(f"{c:<18}" for c in cells) + " |")


if __name__ == "__main__":
    main()
