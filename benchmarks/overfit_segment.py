"""Overfit check of the segment model: scene0000_00's ground-truth objects given as its pseudo masks.

The ground-truth objects (18 benchmark classes, at least 100 vertices) are turned into masks over the
scan's segments (a segment belongs to an object when most of its vertices do), written as a pseudo-mask
file, and one round of the ``segment`` preset is trained on them (no augmentation, no DropLoss, ``--steps``
steps). Then the model segments the scan and is scored against the ground truth: it should reproduce it
(AP50 near the segment-level upper bound, also printed), which shows the model, losses and inference are
wired correctly. Prints the time taken.

    python benchmarks/overfit_segment.py [--steps 800] [--work /tmp/overfit_segment]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from fitbench import figures

from unscene3d.evaluation import MIN_REGION_SIZE, SCANNET_BENCHMARK_CLASS_IDS
from unscene3d.instances import Instances
from unscene3d.io.scan import load_scan
from unscene3d.model.losses import LossConfig
from unscene3d.model.segment_model import TokenAugment
from unscene3d.pseudo.pipeline import PseudoMasks, segment_scene, write_pseudo_masks
from unscene3d.train.selftrain import load_model, predict_training_scan, preset_config, round_dir, self_train
from unscene3d.train.selftrain_data import load_training_scans

SCENE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet" / "scene0000_00"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the preset's)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/overfit_segment"))
    args = parser.parse_args()
    if not SCENE.is_dir():
        raise SystemExit(f"{SCENE} not found: this benchmark needs the real scene beside the checkout")

    scene = load_scan(SCENE, load_frames=False, load_gt=True)
    labels = segment_scene(scene).labels
    count = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=count)
    objects = [i for i in np.unique(scene.gt) if i // 1000 in SCANNET_BENCHMARK_CLASS_IDS and i % 1000
               and (scene.gt == i).sum() >= MIN_REGION_SIZE]
    masks = np.stack([np.bincount(labels, scene.gt == i, count) > 0.5 * sizes for i in objects])
    masks = masks[masks.any(axis=1)]
    pseudo = PseudoMasks(scene.name, labels, Instances(masks, np.ones(len(masks))), {}, SCENE.resolve())
    pseudo_dir = args.work / "pseudo"
    write_pseudo_masks(pseudo_dir, pseudo, scene)
    bound = figures([(scene.name, pseudo.vertex_instances(), scene.gt)])

    still = TokenAugment(rotate=False, scale=(1.0, 1.0), mirror=False, color_noise=0.0, feature_noise=0.0,
                         drop_segments=0.0)
    config = preset_config("segment", steps=args.steps, lr=args.lr)
    config = dataclasses.replace(config, augment=still, loss=LossConfig(drop_loss=False))
    run = args.work / f"run_{args.steps}_{config.lr:g}"
    started = time.perf_counter()
    self_train(pseudo_dir, [], run, config, rounds=1)
    seconds = time.perf_counter() - started
    model, _ = load_model(round_dir(run, 1))
    scan = load_training_scans(pseudo_dir, [], config.model)[0]
    prediction = predict_training_scan(model, scan, config)
    result = figures([(scene.name, prediction, scene.gt)])
    print(f"{len(masks)} ground-truth objects as pseudo masks over {count} segments; upper bound (those masks "
          "themselves) AP / AP50 / AP25 %.1f / %.1f / %.1f" % bound)
    print(f"segment model, {args.steps} steps in {seconds:.0f} s: AP / AP50 / AP25 %.1f / %.1f / %.1f "
          f"({len(prediction.scores)} masks)" % result)


if __name__ == "__main__":
    main()
