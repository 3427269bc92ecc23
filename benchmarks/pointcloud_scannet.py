"""Mesh vs point cloud, stage by stage, on the real ScanNet scene0000_00 (docs/benchmarks.md, "Point clouds").

The point cloud is the mesh's own vertices and colours without its faces (written as an N x 6 .npy into
``--work``), so the two inputs differ only in the faces. Per stage and input: what the stage produced, its
class-agnostic AP / AP50 / AP25 where it makes instances, and its time.

- oversegment: both variants at their defaults; for the cloud also the share of vertices in the segment
  matched to their mesh segment (``partition_agreement``);
- baseline felzenszwalb at its default (k 0.05, min 500) and the mean AP50 over a 5 x 5 grid of k and min
  around it (the single setting moves by +-10 points with small changes, for the mesh too);
- baseline hdbscan at its defaults (the cloud with estimated normals);
- pseudo-masks (handcrafted features, official NCut rules), then ``train`` (cpu-small, ``--epochs``) and
  ``predict`` on the scan it trained on: a run through every stage, not a tuned result.

First, how the estimated normals compare with the mesh's (share pointing the same way), and with
``--neighbours-sweep`` how the graph's neighbour count was chosen: the mean, over the 25 settings of the grid,
of the share of vertices in the segment matched to their mesh segment (AP50 at the default setting beside it,
for information; it was not the criterion).

    python benchmarks/pointcloud_scannet.py [--data ../shared/data] [--epochs 10] [--skip-train]
        [--neighbours-sweep] [--work DIR]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from unscene3d.baselines import felzenszwalb_instances, hdbscan_instances
from unscene3d.baselines.common import partition_to_instances
from unscene3d.evaluation import evaluate_scenes
from unscene3d.io.scan import load_scan
from unscene3d.normals import estimate_normals, neighbour_graph
from unscene3d.oversegment import compute_vertex_normals, partition_agreement
from unscene3d.oversegment_points import oversegment_scene
from unscene3d.pseudo.pipeline import PseudoMaskOptions, read_pseudo_masks, run_pseudo_masks

REPO_ROOT = Path(__file__).resolve().parents[1]
GRID = list(itertools.product((0.03, 0.04, 0.05, 0.06, 0.08), (300, 400, 500, 600, 800)))


def figures(scene, found) -> str:
    result = evaluate_scenes([(scene.name, found, scene.gt)]).overall
    return f"{result['AP']:5.1f} / {result['AP50']:5.1f} / {result['AP25']:5.1f}"


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=10, help="round-1 epochs of the cpu-small training run")
    parser.add_argument("--skip-train", action="store_true", help="stop after the pseudo masks")
    parser.add_argument("--neighbours-sweep", action="store_true", help="also sweep the graph's neighbour count")
    parser.add_argument("--work", type=Path, default=None, help="folder for the written files (default: temporary)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    scan_dir = args.data / "scannet" / "scene0000_00"
    work = args.work or Path(tempfile.mkdtemp(prefix="pointcloud_scannet_"))
    mesh = load_scan(scan_dir, load_frames=False, load_gt=True)
    cloud_path = work / "points" / "scene0000_00.npy"
    cloud_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(cloud_path, np.hstack([mesh.vertices, mesh.colors / 255.0]))
    cloud = load_scan(cloud_path, gt_path=scan_dir / "instance_gt" / "scene0000_00.txt")
    scans = {"mesh": (scan_dir, mesh), "points": (cloud_path, cloud)}
    print(f"scene0000_00: {mesh.num_vertices} vertices, {len(mesh.faces)} faces; the cloud drops the faces")

    print("\n== normals ==")
    mesh_normals = compute_vertex_normals(mesh.vertices, mesh.faces).astype(np.float64)
    estimated = estimate_normals(cloud.vertices)
    same_way = np.einsum("ij,ij->i", estimated, mesh_normals) > 0
    graph = neighbour_graph(cloud.vertices)
    first = np.unique(graph.voxel_of_point, return_index=True)[1]
    opposite = np.einsum("ij,ij->i", mesh_normals[first][graph.edge_a], mesh_normals[first][graph.edge_b]) < 0
    print(f"estimated normals pointing the mesh normal's way: {100 * same_way.mean():.1f}% of vertices; graph edges "
          f"joining mesh normals of opposite sign: {100 * opposite.mean():.1f}%")
    if args.neighbours_sweep:
        mesh_grid = {setting: oversegment_scene(mesh, k_thresh=setting[0], min_verts=setting[1]).labels
                     for setting in GRID}
        for neighbours in (6, 8, 10, 12, 16):
            shares = []
            for setting in GRID:
                labels = oversegment_scene(cloud, k_thresh=setting[0], min_verts=setting[1], neighbours=neighbours).labels
                shares.append(partition_agreement(mesh_grid[setting], labels)[0])
                if setting == (0.05, 500):
                    found = partition_to_instances(labels)
                    at_default = evaluate_scenes([(cloud.name, found, cloud.gt)]).overall["AP50"]
            print(f"{neighbours:2d} neighbours: mean share in the matched mesh segment {100 * np.mean(shares):.1f}%;"
                  f" AP50 at (0.05, 500) {at_default:.1f}")

    print("\n== oversegment (variant defaults) ==")
    for variant in ("scannet", "unscene3d"):
        reference = None
        for kind, (_, scene) in scans.items():
            segmentation, seconds = timed(oversegment_scene, scene, variant=variant)
            line = f"{variant:10s} {kind:6s} {segmentation.num_segments:5d} segments {seconds:6.2f}s"
            if reference is None:
                reference = segmentation.labels
            else:
                line += f"  in the matched mesh segment: {100 * partition_agreement(reference, segmentation.labels)[0]:.1f}%"
            print(line)

    print("\n== baseline felzenszwalb (AP / AP50 / AP25) ==")
    for kind, (_, scene) in scans.items():
        found, seconds = timed(felzenszwalb_instances, scene)
        grid = []
        for k, min_verts in GRID:
            labels = oversegment_scene(scene, k_thresh=k, min_verts=min_verts).labels
            grid.append(evaluate_scenes([(scene.name, partition_to_instances(labels), scene.gt)]).overall["AP50"])
        print(f"{kind:6s} k 0.05 min 500: {len(found):3d} instances {figures(scene, found)} {seconds:6.2f}s;"
              f" AP50 over the 5x5 grid: mean {np.mean(grid):.1f}, min {np.min(grid):.1f},"
              f" max {np.max(grid):.1f}")

    print("\n== baseline hdbscan (AP / AP50 / AP25) ==")
    for kind, (_, scene) in scans.items():
        found, seconds = timed(hdbscan_instances, scene)
        print(f"{kind:6s} {len(found):3d} instances {figures(scene, found)} {seconds:6.2f}s")

    print("\n== pseudo-masks (handcrafted, official NCut rules) ==")
    for kind, (path, scene) in scans.items():
        written, seconds = timed(run_pseudo_masks, [path], work / kind / "pseudo", PseudoMaskOptions(), force=True)
        pseudo = read_pseudo_masks(written[0])
        print(f"{kind:6s} {len(pseudo.instances):3d} masks over {pseudo.instances.num_units} segments "
              f"{figures(scene, pseudo.vertex_instances())} {seconds:6.2f}s")
    if args.skip_train:
        return

    from unscene3d.predict import Predictor
    from unscene3d.train.selftrain import preset_config, self_train

    print(f"\n== train (cpu-small, {args.epochs} epochs) + predict on the training scan ==")
    for kind, (path, scene) in scans.items():
        config = preset_config("cpu-small", epochs=args.epochs)
        result, train_seconds = timed(self_train, work / kind / "pseudo", [path], work / kind / "run", config)
        predictor = Predictor.load(work / kind / "run")
        prediction, predict_seconds = timed(predictor.predict, scene)
        print(f"{kind:6s} rounds {result.rounds}, train {train_seconds:6.1f}s; predict {len(prediction.scores):3d} "
              f"instances {figures(scene, prediction)} {predict_seconds:6.2f}s")


if __name__ == "__main__":
    main()
