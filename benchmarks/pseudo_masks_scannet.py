"""Quality of the pseudo masks alone: AP / AP50 / AP25 on scene0000_00 and on synthetic rooms.

For each modality that can run here, the masked NCut pseudo masks (official defaults, no tuning)
are scored with the ScanNet class-agnostic procedure against the scene's ground truth:

- ``handcrafted`` always;
- ``3d`` when ``--checkpoint`` names a pretrained backbone (the backbone issue's ``pretrain``);
- ``2d`` / ``both`` when ``--encoder`` names real encoder weights (a DINO hub id or local folder;
  nothing is downloaded unless the id is given and the cache or network has it).

Synthetic rooms (``make_synthetic_scene``, seeds ``--seeds``) give handcrafted AP50 with known
ground truth (they have no real frames, so 2D needs ``--encoder`` and renders frames).

    python benchmarks/pseudo_masks_scannet.py [--checkpoint RUN] [--encoder ID] [--seeds 0 1 2 3 4] [--isolate-masked]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from unscene3d.evaluation import evaluate_scenes
from unscene3d.pseudo.ncut import NCutConfig
from unscene3d.pseudo.pipeline import PseudoMaskOptions, pseudo_masks_for_scene

SCENE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet" / "scene0000_00"


def score(scenes, options: PseudoMaskOptions) -> tuple[dict, int, float]:
    start = time.perf_counter()
    items, count = [], 0
    for scene in scenes:
        result = pseudo_masks_for_scene(scene, options)
        count += len(result.scores)
        items.append((scene.name, result.vertex_masks(), result.scores, scene.gt))
    return evaluate_scenes(items).overall, count, time.perf_counter() - start


def row(label: str, figures: dict, count: int, seconds: float) -> str:
    return (f"{label:<34} AP {100 * figures['AP']:5.1f}  AP50 {100 * figures['AP50']:5.1f}  "
            f"AP25 {100 * figures['AP25']:5.1f}  masks {count:3d}  {seconds:6.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="pretrained backbone checkpoint for the 3d modality")
    parser.add_argument("--encoder", help="image encoder (hub id or folder) for 2d / both")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--frame-step", type=int, default=1, help="2d: every n-th frame (scene0000 ships 3)")
    parser.add_argument("--isolate-masked", action="store_true", help="NCutConfig.isolate_masked (not official)")
    args = parser.parse_args()
    ncut = NCutConfig(isolate_masked=args.isolate_masked)

    modalities = ["handcrafted"]
    if args.checkpoint:
        modalities.append("3d")
    if args.encoder:
        modalities.append("2d")
    if args.checkpoint and args.encoder:
        modalities.append("both")

    if SCENE.is_dir():
        from unscene3d.io.scan import load_scan

        scene = load_scan(SCENE, load_gt=True)
        print(f"{scene.name}: {scene.num_vertices} vertices, {len(scene.frames)} frames")
        for modality in modalities:
            options = PseudoMaskOptions(
                modality=modality, checkpoint=args.checkpoint, encoder=args.encoder,
                frame_step=args.frame_step, ncut=ncut,
            )
            print(row(f"scene0000_00 {modality}", *score([scene], options)))
    else:
        print(f"{SCENE} not found: real-scene figures skipped")

    if args.seeds:
        from unscene3d.synthetic import make_synthetic_scene

        rooms = [make_synthetic_scene(seed, with_frames=bool(args.encoder)) for seed in args.seeds]
        for modality in modalities:
            options = PseudoMaskOptions(modality=modality, checkpoint=args.checkpoint, encoder=args.encoder, ncut=ncut)
            print(row(f"synthetic seeds {args.seeds} {modality}", *score(rooms, options)))
            for room in rooms:
                print(row(f"  {room.name} {modality}", *score([room], options)))


if __name__ == "__main__":
    main()
