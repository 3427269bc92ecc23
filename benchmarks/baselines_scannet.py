"""Class-agnostic AP of the learning-free baselines on a real ScanNet scene (README's baseline table).

Also scores the C++ ScanNet Segmentator's reference segments as instances, so our Felzenszwalb baseline
can be compared with the C++ tool's output under the same evaluation.

    python benchmarks/baselines_scannet.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from unscene3d.baselines import felzenszwalb_instances, hdbscan_instances
from unscene3d.baselines.common import partition_to_instances
from unscene3d.evaluation import evaluate_scenes
from unscene3d.io.scan import load_scan
from unscene3d.io.segments import read_segs_json

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--scene", default="scene0000_00")
    args = parser.parse_args()

    scan_dir = args.data / "scannet" / args.scene
    scene = load_scan(scan_dir, load_frames=False, load_gt=True)
    reference_dir = args.data / "scannet" / "segmentator_reference"

    rows = []

    def score(label: str, found, seconds: float) -> None:
        figures = evaluate_scenes([(scene.name, found, scene.gt)]).overall
        rows.append((label, len(found), figures, seconds))

    for k, min_verts in ((0.01, 20), (0.05, 100), (0.05, 500)):
        start = time.perf_counter()
        found = felzenszwalb_instances(scene, k_thresh=k, min_verts=min_verts)
        score(f"felzenszwalb k={k} min={min_verts}", found, time.perf_counter() - start)
        reference = reference_dir / f"{args.scene}_vh_clean_2.k{k}_min{min_verts}.segs.json"
        if reference.is_file():
            found = partition_to_instances(read_segs_json(reference))
            score(f"  C++ Segmentator reference k={k} min={min_verts}", found, float("nan"))

    start = time.perf_counter()
    found = hdbscan_instances(scene)
    score("hdbscan (defaults)", found, time.perf_counter() - start)

    print(f"{args.scene}: {scene.num_vertices} vertices; scores = instance size; figures in %")
    print(f"{'method':48s} {'inst':>5s} {'AP':>6s} {'AP50':>6s} {'AP25':>6s} {'time':>7s}")
    for label, count, figures, seconds in rows:
        print(
            f"{label:48s} {count:5d} {figures['AP']:6.1f} {figures['AP50']:6.1f}"
            f" {figures['AP25']:6.1f} {seconds:6.2f}s"
        )


if __name__ == "__main__":
    main()
