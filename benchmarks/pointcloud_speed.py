"""Oversegmentation of a 1,000,000-point cloud: time and peak memory (docs/benchmarks.md, "Point clouds").

The cloud is sampled uniformly (by area, seed 0) from the surface of a synthetic furnished room, or with
``--scannet`` from scene0000_00's mesh in ../shared, with the colour of each sample's nearest corner; it is
a room-sized scan as a LiDAR or phone would give it, denser than the 2 cm voxel grid. Each run is the
whole ``oversegment_scene`` call (voxelisation, neighbours, normals and their orientation, the graph,
Felzenszwalb, labels for every point) after one warm-up call on a small cloud (numba's compiled code is
loaded from its cache there). Peak memory is the process's peak resident size (VmHWM) minus its size
before the first call.

    python benchmarks/pointcloud_speed.py [--points 1000000] [--voxel-size 0.02] [--scannet]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from memory import status_kib

from unscene3d.oversegment_points import oversegment_scene
from unscene3d.scene import Scene

REPO_ROOT = Path(__file__).resolve().parents[1]


def surface_samples(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, count: int):
    rng = np.random.default_rng(0)
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    chosen = rng.choice(len(faces), count, p=areas / areas.sum())
    r1, r2 = rng.random((2, count))
    root = np.sqrt(r1)
    weights = np.stack([1 - root, root * (1 - r2), root * r2], axis=1)
    points = np.einsum("nk,nkd->nd", weights, np.stack([a[chosen], b[chosen], c[chosen]], axis=1))
    corner = faces[chosen, np.argmax(weights, axis=1)]
    return points, colors[corner]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--voxel-size", type=float, default=None, help="default: the library's (2 cm)")
    parser.add_argument("--scannet", action="store_true", help="sample scene0000_00 from ../shared instead")
    args = parser.parse_args()

    if args.scannet:
        from unscene3d.io.scan import load_scan

        source = load_scan(REPO_ROOT.parent / "shared" / "data" / "scannet" / "scene0000_00", load_frames=False)
    else:
        from unscene3d.synthetic import make_synthetic_scene

        source = make_synthetic_scene(0)
    points, colors = surface_samples(source.vertices, source.faces, source.colors, args.points)
    no_faces = np.zeros((0, 3), np.int64)
    warm = Scene(name="warm", vertices=points[:5000], faces=no_faces, colors=colors[:5000])
    for variant in ("scannet", "unscene3d"):
        oversegment_scene(warm, variant=variant)
    cloud = Scene(name="cloud", vertices=points, faces=no_faces, colors=colors)
    before = status_kib("VmRSS")
    print(f"{len(points):,} points sampled from {'scene0000_00' if args.scannet else 'synthetic room 0'}; "
          f"process {before / 1024:.0f} MiB before")
    for variant in ("scannet", "unscene3d"):
        start = time.perf_counter()
        segmentation = oversegment_scene(cloud, variant=variant, voxel_size=args.voxel_size)
        seconds = time.perf_counter() - start
        peak = (status_kib("VmHWM") - before) / 1024
        print(f"{variant:10s} voxel {segmentation.params['voxelSize']} m ({segmentation.params['voxelPoints']:,} voxel "
              f"points): {seconds:5.1f} s, peak +{peak:.0f} MiB (cumulative), {segmentation.num_segments} segments")


if __name__ == "__main__":
    main()
