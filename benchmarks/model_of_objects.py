"""The model of objects (a ranker of candidate masks trained on generated scenes) against the classic baseline
and the no-weights pseudo masks, on every real scan in ../shared and on generated scenes never trained on.

Rows per scan: the Felzenszwalb baseline (`unscene3d baseline felzenszwalb`), the no-weights spatial cut
(`pseudo-masks --source ncut`, the default before the model), the oracle order of the candidates (each ranked
by its true IoU: what a perfect ranker could reach with these candidates), and the ranked candidates of each
ranker file given (default: the shipped one; several files, e.g. the same command with other seeds, give one
row each). Columns: AP / AP50 / AP25 (percent, ScanNet protocol), masks, seconds per scan from the loaded scan
to its masks (oversegmentation included), and for the rankers the ratio of AP50 to the baseline's.

    python benchmarks/model_of_objects.py [--ranker FILE ...] [--generated 20] [--generated-seed 950000]

Generated scenes come from the ranker's own training generator, at seeds no ranker trained on
(``--generated-seed``; training uses 100000 + and validation 900000 +).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from unscene3d.baselines import felzenszwalb_instances
from unscene3d.evaluation import evaluate_scenes
from unscene3d.instances import Instances
from unscene3d.io.scan import load_scan
from unscene3d.proposals.ranker import load_ranker, rank_candidates, select_candidates
from unscene3d.proposals.training import candidate_targets, generated_scene
from unscene3d.pseudo.pipeline import PseudoMaskOptions, pseudo_masks_for_scene, segment_scene
from unscene3d.segments import describe_segments

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet"
REAL = ("scene0000_00", "scene0011_00")


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def scan_rows(scene, rankers: dict[str, object]) -> dict[str, tuple[Instances, float]]:
    """Each method's masks over the scene's vertices, with its seconds."""
    rows = {}
    rows["felzenszwalb baseline"] = timed(lambda: felzenszwalb_instances(scene))
    cut, seconds = timed(lambda: pseudo_masks_for_scene(scene, PseudoMaskOptions(source="ncut")))
    rows["no-weights cut (pseudo-masks --source ncut)"] = (cut.vertex_instances(), seconds)
    for name, ranker in rankers.items():
        def run(ranker=ranker):
            segmentation = segment_scene(scene)
            segments = describe_segments(scene, segmentation.labels, segmentation.num_segments)
            return segments, rank_candidates(scene, segments, ranker)
        (segments, ranked), seconds = timed(run)
        rows[name] = (ranked.instances.over(segments.labels), seconds)
    if rankers and scene.gt is not None:
        candidates = ranked.candidates
        truth = candidate_targets(candidates.masks, segments.labels, scene.gt)
        ranker = next(iter(rankers.values()))
        kept = select_candidates(candidates.masks, truth, segments.sizes.astype(np.float64), ranker.selection)
        rows["oracle order of the candidates"] = (Instances(candidates.masks[kept], truth[kept]).over(segments.labels),
                                                  0.0)
    return rows


def report(title: str, scenes: list, rankers: dict[str, object]) -> None:
    per_method: dict[str, list] = {}
    seconds: dict[str, list] = {}
    for scene in scenes:
        for name, (instances, spent) in scan_rows(scene, rankers).items():
            per_method.setdefault(name, []).append((scene.name, instances, scene.gt))
            seconds.setdefault(name, []).append(spent)
    print(f"\n{title}\n| method | AP | AP50 | AP25 | masks | s/scan | AP50 / baseline |\n|---|---:|---:|---:|---:|---:|---:|")
    baseline = evaluate_scenes(per_method["felzenszwalb baseline"]).overall["AP50"]
    for name, items in per_method.items():
        figures = evaluate_scenes(items).overall
        masks = sum(len(i) for _, i, _ in items)
        ratio = f"{figures['AP50'] / baseline:.2f}x" if baseline > 0 else "-"
        print(f"| {name} | {figures['AP']:.1f} | {figures['AP50']:.1f} | {figures['AP25']:.1f} | {masks} | "
              f"{np.median(seconds[name]):.2f} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranker", nargs="*", default=[None], help="ranker files (default: the shipped one)")
    parser.add_argument("--generated", type=int, default=20, help="generated scenes never trained on")
    parser.add_argument("--generated-seed", type=int, default=950_000)
    args = parser.parse_args()
    rankers = {f"model: {Path(f).name if f else 'shipped ranker'}": load_ranker(f) for f in args.ranker}
    for name in REAL:
        if not (DATA / name).exists():
            print(f"{name}: not found under {DATA}, skipped")
            continue
        report(f"{name}", [load_scan(DATA / name, load_gt=True, load_frames=False)], rankers)
    if args.generated:
        seeds = range(args.generated_seed, args.generated_seed + args.generated)
        report(f"generated scenes {seeds.start}-{seeds.stop - 1} (never trained on)", [generated_scene(s) for s in seeds],
               rankers)


if __name__ == "__main__":
    main()
