"""The real self-training run: pseudo masks, then rounds of self-training, scored after every stage.

Training scans: the real ScanNet scene0000_00 (from ../shared) and synthetic rooms (``--train-seeds``).
Pseudo masks come from ``unscene3d pseudo-masks`` (3D features of ``--checkpoint``, else handcrafted
features; official NCut rules unless ``--isolate-masked``), then ``unscene3d train`` runs ``--rounds``
rounds of the preset. After the pseudo masks and after every round, class-agnostic AP / AP50 / AP25 are
measured (ScanNet procedure) on

- scene0000_00 -- a training scan: it is learned without labels, as in the unsupervised setting;
- the synthetic training rooms;
- held-out synthetic rooms (``--test-seeds``) that no stage saw: pseudo masks are computed for them
  only to compare, the model predicts them from geometry and colour.

Everything is written under ``--work`` (default: a temporary folder); finished stages are skipped on a
re-run (pseudo masks and rounds resume as the commands do).

    python benchmarks/selftrain_scannet.py --checkpoint PRETRAIN_RUN/checkpoint [--rounds 2]
        [--preset cpu-small] [--train-seeds 1 2 3] [--test-seeds 0 4] [--isolate-masked] [--no-drop-loss] [--epochs N]
        [--work DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

from unscene3d.evaluation import evaluate_scenes
from unscene3d.io.benchmark import write_gt_txt
from unscene3d.io.ply import write_ply
from unscene3d.io.scan import load_scan
from unscene3d.predict import Predictor
from unscene3d.pseudo.ncut import NCutConfig
from unscene3d.pseudo.pipeline import PseudoMaskOptions, pseudo_masks_for_scene, read_pseudo_masks, run_pseudo_masks
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train.selftrain import preset_config, round_dir, self_train

SCENE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet" / "scene0000_00"


def write_synthetic(folder: Path, seed: int) -> Path:
    scene = make_synthetic_scene(seed)
    path = folder / f"{scene.name}.ply"
    if not path.is_file():
        write_ply(path, scene.vertices, scene.faces, scene.colors)
        write_gt_txt(folder / "gt" / f"{scene.name}.txt", scene.gt)
    return path


def load_with_gt(path: Path):
    gt = path.parent / "gt" / f"{path.stem}.txt"
    return load_scan(path, gt_path=gt if gt.is_file() else None, load_frames=False)


def figures(items) -> str:
    result = evaluate_scenes(items).overall
    return f"{result['AP']:5.1f} {result['AP50']:5.1f} {result['AP25']:5.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="pretrained backbone for 3D pseudo-mask features (else handcrafted)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--train-seeds", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--test-seeds", type=int, nargs="*", default=[0, 4])
    parser.add_argument("--isolate-masked", action="store_true", help="NCutConfig.isolate_masked (not official)")
    parser.add_argument("--no-drop-loss", action="store_true", help="train without DropLoss")
    parser.add_argument("--epochs", type=int, default=None, help="round-1 epochs (default: the preset's)")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not SCENE.is_dir():
        raise SystemExit(f"needs the real scan at {SCENE}")

    work = args.work or Path(tempfile.mkdtemp(prefix="selftrain_"))
    scans_dir = work / "scans"
    scans_dir.mkdir(parents=True, exist_ok=True)
    train_synthetic = [write_synthetic(scans_dir, seed) for seed in args.train_seeds]
    test_synthetic = [write_synthetic(scans_dir, seed) for seed in args.test_seeds]

    modality = "3d" if args.checkpoint else "handcrafted"
    options = PseudoMaskOptions(modality=modality, checkpoint=args.checkpoint,
                                ncut=NCutConfig(isolate_masked=args.isolate_masked))
    start = time.perf_counter()
    run_pseudo_masks([SCENE, *train_synthetic], work / "pseudo", options)
    pseudo_seconds = time.perf_counter() - start

    start = time.perf_counter()
    config = preset_config(args.preset, epochs=args.epochs)
    if args.no_drop_loss:
        config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, drop_loss=False))
    self_train(work / "pseudo", [], work / "run", config, rounds=args.rounds)
    train_seconds = time.perf_counter() - start

    real = load_scan(SCENE, load_frames=False, load_gt=True)
    train_scenes = [load_with_gt(p) for p in train_synthetic]
    test_scenes = [load_with_gt(p) for p in test_synthetic]
    groups = {"scene0000_00": [real], "synthetic train": train_scenes, "synthetic held-out": test_scenes}

    rows = []
    # The training scans' pseudo masks were written above; only the held-out rooms need computing.
    pseudo, extractors = {}, options.extractors()
    for scene in (s for scenes in groups.values() for s in scenes):
        written = work / "pseudo" / f"{scene.name}.npz"
        pseudo[scene.name] = (read_pseudo_masks(written) if written.is_file()
                              else pseudo_masks_for_scene(scene, options, extractors))
    rows.append(("pseudo masks", {
        group: figures([(s.name, pseudo[s.name].vertex_instances(), s.gt) for s in scenes])
        for group, scenes in groups.items()
    }))
    for index in range(1, args.rounds + 1):
        predictor = Predictor.load(round_dir(work / "run", index))
        predictions = {s.name: predictor.predict(s, pseudo[s.name].segment_labels)
                       for scenes in groups.values() for s in scenes}
        rows.append((f"after round {index}", {
            group: figures([(s.name, predictions[s.name], s.gt) for s in scenes])
            for group, scenes in groups.items()
        }))

    print(f"pseudo masks ({modality}{', isolate_masked' if args.isolate_masked else ''}) of "
          f"{1 + len(train_synthetic)} training scans in {pseudo_seconds:.0f} s; "
          f"{args.rounds} round(s) of preset {args.preset} in {train_seconds / 60:.1f} min (run folder {work})")
    print(f"{'AP / AP50 / AP25 (%)':<16}" + "".join(f"{group:>22}" for group in groups))
    for label, values in rows:
        print(f"{label:<16}" + "".join(f"{values[group]:>22}" for group in groups))


if __name__ == "__main__":
    main()
