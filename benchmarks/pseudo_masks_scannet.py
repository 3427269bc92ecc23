"""Quality and speed of the pseudo masks alone, one row per variant, on scene0000_00 and synthetic rooms.

Variants (cumulative, as in docs/benchmarks.md "Pseudo masks"):

- ``official``: the paper's masked NCut on the fully connected cosine graph of the handcrafted
  descriptor, masks ranked by cut order (what `--modality handcrafted --ncut official
  --no-structure` writes; bit-identical to the official rules);
- ``+ structure``: floor, walls and ceiling masked out before the first cut;
- ``+ descriptors``: the geometric descriptors instead of the handcrafted ones;
- ``+ spatial affinity``: recursive cuts over touching segments, masks scored by objectness;
- ``default (model of objects)``: `unscene3d pseudo-masks SCAN -o OUT` with no flags, which since the model
  of objects is its candidates ranked by the shipped ranker (benchmarks/model_of_objects.py has its table).

Further rows: the spatial graph with descriptor distances instead of colour, the `--isolate-masked`
official loop, the Felzenszwalb source (Table 8) and, for reference, the Felzenszwalb baseline.
``--checkpoint`` adds the 3D modality under both cuts.

Columns: AP / AP50 / AP25 (%, ScanNet class-agnostic protocol), the number of masks, the masks'
precision (the share of masks with IoU >= 0.5 to a ground-truth object, among the masks not lying
mostly on void) and seconds per scan (from loaded scan to masks; no model inference here).

    python benchmarks/pseudo_masks_scannet.py [--seeds 0 ... 9] [--checkpoint RUN/checkpoint]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from unscene3d.baselines import felzenszwalb_instances
from unscene3d.evaluation import MIN_REGION_SIZE, SCANNET_BENCHMARK_CLASS_IDS, evaluate_scenes
from unscene3d.pseudo.graph import GraphConfig
from unscene3d.pseudo.ncut import NCutConfig
from unscene3d.pseudo.pipeline import PseudoMaskOptions, pseudo_masks_for_scene

SCENE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet" / "scene0000_00"


def variants(checkpoint: str | None) -> list[tuple[str, PseudoMaskOptions | str]]:
    rows: list[tuple[str, PseudoMaskOptions | str]] = [
        ("official", PseudoMaskOptions(modality="handcrafted", cut="official", structure=False)),
        ("+ structure", PseudoMaskOptions(modality="handcrafted", cut="official")),
        ("+ descriptors", PseudoMaskOptions(modality="geometric", cut="official")),
        ("+ spatial affinity", PseudoMaskOptions(modality="geometric", cut="spatial")),
        ("default (model of objects)", PseudoMaskOptions()),
        ("spatial, descriptor distances", PseudoMaskOptions(
            source="ncut", modality="geometric", graph=GraphConfig(feature_scale=4.0, feature_source="features"))),
        ("spatial, no structure", PseudoMaskOptions(structure=False)),
        ("official + isolate_masked", PseudoMaskOptions(
            modality="handcrafted", cut="official", structure=False, ncut=NCutConfig(isolate_masked=True))),
        ("felzenszwalb source (Table 8)", PseudoMaskOptions(source="felzenszwalb")),
        ("felzenszwalb baseline (k 0.05, min 500)", "baseline"),
    ]
    if checkpoint:
        rows += [
            ("3d, official", PseudoMaskOptions(modality="3d", checkpoint=checkpoint, cut="official", structure=False)),
            ("3d, spatial + structure", PseudoMaskOptions(modality="3d", checkpoint=checkpoint)),
        ]
    return rows


def mask_precision(masks: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """(masks with IoU >= 0.5 to a foreground object, masks not lying mostly on void)."""
    foreground = np.isin(gt // 1000, SCANNET_BENCHMARK_CLASS_IDS) & (gt % 1000 != 0)
    instances = [gt == i for i in np.unique(gt[foreground]) if (gt == i).sum() >= MIN_REGION_SIZE]
    hits = counted = 0
    for mask in masks:
        if mask.sum() < MIN_REGION_SIZE or (mask & ~foreground).sum() > 0.5 * mask.sum():
            continue
        counted += 1
        best = max(((mask & g).sum() / (mask | g).sum() for g in instances), default=0.0)
        hits += best >= 0.5
    return hits, counted


def run(scenes, variant: PseudoMaskOptions | str) -> dict:
    items, seconds, hits, counted, count = [], [], 0, 0, 0
    extractors = None if variant == "baseline" else variant.extractors()  # models load once, on the first scene
    for scene in scenes:
        start = time.perf_counter()
        if variant == "baseline":
            found = felzenszwalb_instances(scene)
        else:
            result = pseudo_masks_for_scene(scene, variant, extractors)
            found = result.vertex_instances()
        seconds.append(time.perf_counter() - start)
        h, c = mask_precision(found.masks, scene.gt)
        hits, counted, count = hits + h, counted + c, count + len(found)
        items.append((scene.name, found, scene.gt))
    figures = evaluate_scenes(items).overall
    return {**figures, "masks": count, "precision": hits / max(counted, 1), "seconds": float(np.median(seconds))}


def row(label: str, figures: dict) -> str:
    return (f"| {label:<40} | {figures['AP']:5.1f} | {figures['AP50']:5.1f} | {figures['AP25']:5.1f}"
            f" | {figures['masks']:4d} | {100 * figures['precision']:5.1f} | {figures['seconds']:5.2f} |")


def table(title: str, scenes, rows) -> None:
    print(f"\n{title}\n")
    print(f"| {'variant':<40} |    AP |  AP50 |  AP25 | masks | prec. | s/scan |")
    print(f"|{'-' * 42}|------:|------:|------:|------:|------:|-------:|")
    for label, variant in rows:
        print(row(label, run(scenes, variant)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="pretrained backbone checkpoint: adds the 3d modality")
    parser.add_argument("--seeds", type=int, nargs="*", default=list(range(10)), help="synthetic rooms to score")
    parser.add_argument("--only", nargs="*", help="variant labels to run (default: all)")
    args = parser.parse_args()
    rows = [(label, v) for label, v in variants(args.checkpoint) if not args.only or label in args.only]

    if SCENE.is_dir():
        from unscene3d.io.scan import load_scan

        scene = load_scan(SCENE, load_frames=False, load_gt=True)
        table(f"scene0000_00 ({scene.num_vertices} vertices)", [scene], rows)
    else:
        print(f"{SCENE} not found: real-scene figures skipped")
    if args.seeds:
        from unscene3d.synthetic import make_synthetic_scene

        rooms = [make_synthetic_scene(seed) for seed in args.seeds]
        table(f"synthetic rooms, seeds {args.seeds[0]}-{args.seeds[-1]} ({len(rooms)} rooms)", rooms, rows)


if __name__ == "__main__":
    main()
