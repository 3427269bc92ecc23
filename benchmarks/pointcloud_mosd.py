"""The four real Kinect frames of mOSD (../shared/data/mosd): are the tabletop objects found?

Each frame is read as it is (organized 640 x 480 PCD, NaN pixels, per-point labels): its objects are ground
truth, the table is void (DESIGN.md; ``unscene3d.io.pointclouds``). Per frame, class-agnostic AP / AP50 / AP25
of the learning-free baselines, scores = segment size:

- Felzenszwalb on the point graph at the tabletop setting: 1 cm voxels (a Kinect at ~1 m samples every
  2 mm, and the objects are 5-20 cm), minimum segment 100 voxels (0.01 m^2, a 10 cm face), the default k
  0.05 -- set by those sizes, not searched;
- the same at the room defaults (2 cm, min 500 voxels = 0.2 m^2, larger than the objects);
- HDBSCAN at its defaults (10 cm voxels) and at 2 cm;
- a sensitivity sweep of the Felzenszwalb setting (voxel 1/2 cm x k 0.01/0.05/0.2 x min 20/50/100/200):
  how often every frame reaches AP50 50, and the mean.

    python benchmarks/pointcloud_mosd.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import itertools
import logging
from pathlib import Path

import numpy as np

from unscene3d.baselines import felzenszwalb_instances, hdbscan_instances
from unscene3d.baselines.hdbscan import HdbscanConfig
from unscene3d.evaluation import evaluate_scenes
from unscene3d.io.scan import load_scan

REPO_ROOT = Path(__file__).resolve().parents[1]
FRAMES = ("learn0", "learn17", "learn25", "learn33")


def per_frame(scenes, run) -> list[dict[str, float]]:
    rows = []
    for scene in scenes:
        rows.append(evaluate_scenes([(scene.name, run(scene), scene.gt)]).overall)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    scenes = [load_scan(args.data / "mosd" / f"{name}.pcd") for name in FRAMES]
    for scene in scenes:
        objects = len(np.unique(scene.gt[scene.gt > 0]))
        print(f"{scene.name}: {scene.input_size} points, {scene.num_vertices} with coordinates, {objects} objects")

    settings = {
        "felzenszwalb, tabletop setting (1 cm, min 100)": lambda s: felzenszwalb_instances(s, voxel_size=0.01,
                                                                                            min_verts=100),
        "felzenszwalb, room defaults (2 cm, min 500)": felzenszwalb_instances,
        "hdbscan defaults (10 cm voxels)": hdbscan_instances,
        "hdbscan, 2 cm voxels": lambda s: hdbscan_instances(s, HdbscanConfig(voxel_size=0.02)),
    }
    print(f"\n{'AP / AP50 / AP25 per frame':48s} " + "  ".join(f"{name:>17s}" for name in FRAMES))
    for label, run in settings.items():
        rows = per_frame(scenes, run)
        cells = "  ".join(f"{r['AP']:4.1f}/{r['AP50']:5.1f}/{r['AP25']:5.1f}" for r in rows)
        print(f"{label:48s} {cells}")

    sweep = []
    for voxel, k, min_verts in itertools.product((0.01, 0.02), (0.01, 0.05, 0.2), (20, 50, 100, 200)):
        rows = per_frame(scenes, lambda s: felzenszwalb_instances(s, voxel_size=voxel, k_thresh=k, min_verts=min_verts))
        sweep.append([r["AP50"] for r in rows])
    sweep = np.array(sweep)
    print(f"\nsweep of {len(sweep)} felzenszwalb settings: every frame at AP50 >= 50 in {(sweep >= 50).all(1).sum()}; "
          f"mean AP50 per frame {' '.join(f'{v:.1f}' for v in sweep.mean(0))}")


if __name__ == "__main__":
    main()
