"""``unscene3d fit`` on a real scan, transductive (the user's own scans, no labels): scene0000_00.

Runs ``fit`` with its defaults on scene0000_00 alone (the single-scan user), or with ``--synthetic N``
generated rooms beside it as extra unlabeled training scans, and scores the pseudo masks and every round
on scene0000_00 (ScanNet class-agnostic protocol, percent): the masks ``fit`` returns (``union``), the
model's own predictions (``model``, what ``predict`` gives), and the control row ``untrained`` (the same
masks from an untrained model: what the union gains without learning). For reference: the Felzenszwalb
baseline on this scene, AP50 25.8 (docs/benchmarks.md), and the paper after 4 rounds, AP50 32.2 (ScanNet
val, DINO + CSC features, GPU-days: other scenes).

    python benchmarks/fit_scannet.py [--rounds 4] [--synthetic 0] [--model-seeds 0] [--work /tmp/fit_scannet]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fitbench import pseudo_figures, score_round

from unscene3d.fit import FitOptions, fit
from unscene3d.io.benchmark import write_gt_txt
from unscene3d.io.ply import write_ply
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train.selftrain import preset_config
from unscene3d.train.selftrain_data import load_training_scans

SCENE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet" / "scene0000_00"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--synthetic", type=int, default=0, help="synthetic rooms (seeds 10..) trained beside it")
    parser.add_argument("--preset", default="segment")
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fit_scannet"))
    args = parser.parse_args()
    if not SCENE.is_dir():
        raise SystemExit(f"{SCENE} not found: this benchmark needs the real scene beside the checkout")

    scans = [SCENE]
    if args.synthetic:
        rooms = args.work / f"synthetic_{args.synthetic}"
        for seed in range(10, 10 + args.synthetic):
            scene = make_synthetic_scene(seed)
            if not (rooms / f"{scene.name}.ply").is_file():
                write_gt_txt(rooms / "gt" / f"{scene.name}.txt", scene.gt)
                write_ply(rooms / f"{scene.name}.ply", scene.vertices, scene.faces, scene.colors)
        scans.append(rooms)
    for model_seed in args.model_seeds:
        run = args.work / f"run_{args.preset}_synthetic{args.synthetic}_seed{model_seed}"
        config = preset_config(args.preset, seed=model_seed)
        started = time.perf_counter()
        result = fit(scans, run, FitOptions(rounds=args.rounds, config=config))
        minutes = (time.perf_counter() - started) / 60
        real = [s for s in load_training_scans(run / "pseudo", [], config.model, load_gt=True)
                if s.name == "scene0000_00"]
        print(f"\nfit on scene0000_00{f' + {args.synthetic} synthetic rooms' if args.synthetic else ''}, model seed "
              f"{model_seed}: {args.rounds} rounds in {minutes:.1f} min; scene0000_00, AP / AP50 / AP25 (percent)")
        print("| stage | fit's masks (union) | model's own |")
        print("|---|---|---|")
        print("| pseudo masks | %.1f / %.1f / %.1f | - |" % pseudo_figures(real, run / "pseudo"))
        for index in [0] + result.rounds:
            union = score_round(run, index, real, run / "pseudo", config, "union")
            model = score_round(run, index, real, run / "pseudo", config, "model")
            stage = "untrained (control)" if index == 0 else f"round {index}"
            print(f"| {stage} | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f |" % (*union, *model), flush=True)


if __name__ == "__main__":
    main()
