"""Overfitting check of self-training: one synthetic scene's ground-truth instances as its pseudo masks.

Builds a synthetic room, oversegments it as the pseudo-mask stage does, turns every foreground ground-truth
instance into a mask over segments (a segment belongs to the instance holding most of its vertices),
trains one round with the given preset, then predicts the scene (colour, or ``--no-color``) and reports
class-agnostic AP / AP50 / AP25 against its ground truth. Shows that model, losses, augmentation and
inference are wired correctly (goal: AP50 >= 90, percent).

    python benchmarks/overfit_synthetic.py [--preset cpu-small] [--epochs 150] [--seed 0] [--work DIR]
        [--lr LR] [--batch-size B] [--crop METRES] [--no-elastic] [--no-augment] [--drop-loss-warmup FRACTION]
        [--no-color] [--vertex-spacing METRES]

The check reported in README.md (whole scan, no augmentation, one scan per step, 2 cm voxels on a room
sampled every 5 cm to halve the step time, DropLoss off: the targets are exact, and DropLoss switched on
before the masks have formed freezes every pair that does not overlap its target yet):

    python benchmarks/overfit_synthetic.py --threads 1 --epochs 400 --batch-size 1 --no-augment \
        --vertex-spacing 0.05 --drop-loss-warmup 1.0
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unscene3d.evaluation import SCANNET_BENCHMARK_CLASS_IDS, evaluate_scenes
from unscene3d.instances import Instances
from unscene3d.io.ply import write_ply
from unscene3d.predict import Predictor
from unscene3d.pseudo.pipeline import PseudoMasks, segment_scene, write_pseudo_masks
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train.augment import AugmentConfig
from unscene3d.train.selftrain import preset_config, self_train


def gt_segment_masks(gt: np.ndarray, segments: np.ndarray, num_segments: int) -> np.ndarray:
    """(K, S) masks of the foreground ground-truth instances, each segment going to its majority instance."""
    foreground = np.isin(gt // 1000, SCANNET_BENCHMARK_CLASS_IDS) & (gt % 1000 > 0)
    masks = []
    sizes = np.bincount(segments, minlength=num_segments)
    for instance in np.unique(gt[foreground]):
        share = np.bincount(segments, weights=(gt == instance).astype(float), minlength=num_segments) / sizes
        if (share > 0.5).any():
            masks.append(share > 0.5)
    return np.array(masks, dtype=bool).reshape(-1, num_segments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="synthetic scene seed")
    parser.add_argument("--work", type=Path, default=None, help="keep the run here (default: a temp folder)")
    parser.add_argument("--no-color", action="store_true", help="train and predict without vertex colours")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--drop-loss-warmup", type=float, default=None, help="fraction of steps before DropLoss")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--crop", type=float, default=None, help="crop size in metres (0 = whole scan)")
    parser.add_argument("--no-elastic", action="store_true", help="no elastic distortion")
    parser.add_argument("--no-augment", action="store_true",
                        help="whole scan, no rotation, scaling, flips, distortion or colour jitter")
    parser.add_argument("--vertex-spacing", type=float, default=None, help="synthetic room's vertex spacing (m)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        torch.set_num_threads(args.threads)

    work = args.work or Path(tempfile.mkdtemp(prefix="overfit_"))
    spacing = {} if args.vertex_spacing is None else {"vertex_spacing": args.vertex_spacing}
    scene = make_synthetic_scene(args.seed, **spacing)
    scene.name = f"synthetic{args.seed}"
    if args.no_color:
        scene.colors = None
    segmentation = segment_scene(scene)
    masks = gt_segment_masks(scene.gt, segmentation.labels, segmentation.num_segments)
    pseudo = PseudoMasks(scene.name, segmentation.labels, Instances(masks, np.ones(len(masks))), {})
    write_pseudo_masks(work / "pseudo", pseudo)
    write_ply(work / f"{scene.name}.ply", scene.vertices, scene.faces, scene.colors)
    pseudo_ap = evaluate_scenes([(scene.name, pseudo.vertex_instances(), scene.gt)]).overall

    config = preset_config(args.preset, epochs=args.epochs, drop_loss_warmup=args.drop_loss_warmup, lr=args.lr,
                           batch_size=args.batch_size)
    augment = config.augment
    if args.crop is not None:
        augment = dataclasses.replace(augment, crop_size=args.crop)
    if args.no_elastic:
        augment = dataclasses.replace(augment, elastic=())
    if args.no_augment:
        augment = AugmentConfig(crop_size=0.0, rotate=False, scale_range=(1.0, 1.0), flip_probability=0.0, elastic=(),
                                color_shift=0.0, color_contrast=0.0, color_noise=0.0)
    config = dataclasses.replace(config, augment=augment)
    start = time.perf_counter()
    result = self_train(work / "pseudo", [work / f"{scene.name}.ply"], work / "run", config, rounds=1)
    train_seconds = time.perf_counter() - start

    predictor = Predictor.load(work / "run")
    start = time.perf_counter()
    prediction = predictor.predict(scene, segmentation.labels)
    predict_seconds = time.perf_counter() - start
    figures = evaluate_scenes([(scene.name, prediction, scene.gt)]).overall

    losses = result.losses.get(1, [])
    print(f"scene {scene.name}: {len(scene.vertices)} vertices, {segmentation.num_segments} segments, "
          f"{len(masks)} ground-truth masks as pseudo masks (their own AP50 {pseudo_ap['AP50']:.1f})")
    print(f"training: preset {config.preset}, {config.epochs} epochs, {len(losses)} steps in {train_seconds:.0f} s; "
          f"loss {np.mean(losses[:5]):.3f} (first 5) -> {np.mean(losses[-5:]):.3f} (last 5)")
    print(f"prediction: {len(prediction.scores)} instances in {predict_seconds:.1f} s")
    print(f"AP {figures['AP']:.1f}  AP50 {figures['AP50']:.1f}  AP25 {figures['AP25']:.1f}  (percent; run folder {work})")


if __name__ == "__main__":
    main()
