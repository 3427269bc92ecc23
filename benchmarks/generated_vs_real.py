"""Generated training scenes beside real scans, on simple statistics (docs/benchmarks.md, "Generated scenes").

Real: ScanNet scene0000_00 (mesh) and scene0011_00 (point cloud) from ``--data``. Generated: ``make_training_scene``
of ``--seed`` (default 0-7, which draw a tabletop, rooms and L-rooms as meshes and as clouds of mesh vertices, and
11 and 15, rooms as fused depth clouds; kind and variant as the seed draws them) and, for reference, seeds 0-2 of
``make_synthetic_scene``. The generation time (wall clock) is printed beside each.
Per scan, each the same way for meshes and clouds:

- ``pts/m2``: points per square metre of surface, the surface measured as occupied 5 cm voxels (so holes and
  faces do not matter);
- ``plane_mm``: noise on planes: median RMS distance (mm) to the best-fitting plane of the floor and wall points
  in 20 cm cells with at least 20 points;
- ``objects``: ground-truth objects (not wall, floor, ceiling) with at least 100 points;
- ``segs/obj``: median count of the default oversegmentation's segments whose majority lies in one object;
- ``dcol``: median colour difference (CIE Lab distance of segment means) between adjacent segments of one object;
- ``size_m``: object size quantiles (25/50/75 %): the diagonal of each object's axis-aligned box, metres;
- ``hole%``: share of the floor's 5 cm cells inside its outline (the cells' 2D convex hull) that hold no point.

    python benchmarks/generated_vs_real.py [--data ../shared/data] [--seed S ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from unscene3d.io.scan import load_scan
from unscene3d.protocols import STRUCTURE_CLASS_IDS
from unscene3d.pseudo.pipeline import segment_scene
from unscene3d.scene import Scene
from unscene3d.segments.geometry import rgb_to_lab

REPO_ROOT = Path(__file__).resolve().parents[1]
WALL, FLOOR = 1, 2


def surface_density(points: np.ndarray, voxel: float = 0.05) -> float:
    """Points per square metre, the surface taken as the occupied voxels' count times a voxel face."""
    occupied = len(np.unique(np.floor(points / voxel).astype(np.int64), axis=0))
    return len(points) / (occupied * voxel * voxel)


def plane_noise_mm(points: np.ndarray, cell: float = 0.2, min_points: int = 20) -> float:
    """Median RMS residual (mm) of a plane fitted in each occupied ``cell`` (3D grid) of the points."""
    if len(points) < min_points:
        return float("nan")
    keys = np.floor(points / cell).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    residuals = []
    for group in np.split(order, np.cumsum(counts)[:-1]):
        if len(group) < min_points:
            continue
        centred = points[group] - points[group].mean(axis=0)
        residuals.append(np.sqrt(np.linalg.eigvalsh(centred.T @ centred / len(group))[0]))
    return 1000 * float(np.median(residuals)) if residuals else float("nan")


def floor_holes(points: np.ndarray, cell: float = 0.05) -> float:
    """Share (%) of the floor's cells inside the convex outline of its occupied cells that hold no point."""
    cells = np.unique(np.floor(points[:, :2] / cell).astype(np.int64), axis=0)
    if len(cells) < 10:
        return float("nan")
    try:
        hull = ConvexHull(cells + 0.5)
    except QhullError:
        return float("nan")
    lo, hi = cells.min(axis=0), cells.max(axis=0)
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel()], 1) + 0.5
    inside = np.all(grid @ hull.equations[:, :2].T + hull.equations[:, 2] <= 1e-9, axis=1).sum()
    return 100.0 * max(0.0, 1.0 - len(cells) / max(inside, 1))


def scan_statistics(scene: Scene) -> dict[str, float]:
    """The statistics of the module docstring for one scan with ground truth."""
    gt = scene.gt
    label, instance = gt // 1000, gt % 1000
    stats = {
        "points": float(scene.num_vertices),
        "pts/m2": surface_density(scene.vertices),
        "plane_mm": plane_noise_mm(scene.vertices[np.isin(label, (WALL, FLOOR))]),
        "hole%": floor_holes(scene.vertices[label == FLOOR]),
    }
    is_object = ~np.isin(label, STRUCTURE_CLASS_IDS) & (instance > 0)
    ids, counts = np.unique(gt[is_object], return_counts=True)
    ids = ids[counts >= 100]
    stats["objects"] = float(len(ids))
    sizes = [np.linalg.norm(np.ptp(scene.vertices[gt == i], axis=0)) for i in ids]
    for q in (25, 50, 75):
        stats[f"size{q}"] = float(np.percentile(sizes, q)) if sizes else float("nan")
    segmentation = segment_scene(scene)
    labels, count = segmentation.labels, segmentation.num_segments
    object_index = np.full(len(gt), -1)
    object_index[np.isin(gt, ids)] = np.searchsorted(ids, gt[np.isin(gt, ids)])
    overlap = np.zeros((count, len(ids) + 1))
    np.add.at(overlap, (labels, object_index + 1), 1.0)
    owner = overlap.argmax(axis=1) - 1  # -1: mostly not an object
    per_object = np.bincount(owner[owner >= 0], minlength=len(ids))
    stats["segs/obj"] = float(np.median(per_object)) if len(ids) else float("nan")
    if scene.colors is not None and len(segmentation.adjacency):
        lab = rgb_to_lab(scene.colors.astype(np.float64))
        sizes_seg = np.bincount(labels, minlength=count).astype(np.float64)
        mean_lab = np.stack([np.bincount(labels, lab[:, k], minlength=count) for k in range(3)], 1)
        mean_lab /= np.maximum(sizes_seg, 1)[:, None]
        a, b = segmentation.adjacency[:, 0], segmentation.adjacency[:, 1]
        same = (owner[a] >= 0) & (owner[a] == owner[b])
        diff = np.linalg.norm(mean_lab[a[same]] - mean_lab[b[same]], axis=1)
        stats["dcol"] = float(np.median(diff)) if len(diff) else float("nan")
    else:
        stats["dcol"] = float("nan")
    return stats


COLUMNS = ("points", "pts/m2", "plane_mm", "hole%", "objects", "segs/obj", "dcol", "size25", "size50", "size75")


def format_row(name: str, stats: dict[str, float]) -> str:
    cells = [f"{stats[c]:.0f}" if c in ("points", "pts/m2", "objects") else f"{stats[c]:.2f}" for c in COLUMNS]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, action="append", dest="seeds")
    args = parser.parse_args()

    from unscene3d.synthetic import make_synthetic_scene, make_training_scene

    print("| scan | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    real = [("scene0000_00 (mesh)", args.data / "scannet" / "scene0000_00"),
            ("scene0011_00 (cloud)", args.data / "scannet" / "scene0011_00")]
    for name, path in real:
        if not path.exists():
            print(f"| {name} | missing: {path} |")
            continue
        scene = load_scan(path, load_gt=True, load_frames=False)
        if scene.gt is None:
            scene = load_scan(path, gt_path=path / "instance_gt" / f"{path.name}.txt", load_frames=False)
        print(format_row(name, scan_statistics(scene)), flush=True)
    for seed in args.seeds or [*range(8), 11, 15]:
        start = time.perf_counter()
        scene = make_training_scene(seed)
        seconds = time.perf_counter() - start
        print(format_row(f"{scene.name} ({seconds:.1f}s)", scan_statistics(scene)), flush=True)
    for seed in range(3):
        print(format_row(f"rooms {seed} (mesh)", scan_statistics(make_synthetic_scene(seed))), flush=True)


if __name__ == "__main__":
    main()
