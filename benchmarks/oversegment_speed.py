"""Speed and exactness of the oversegmentation on a real ScanNet mesh.

Prints the median in-process time of ``oversegment`` (after a warm-up run that also loads the numba
cache when the C kernels are not built) and of its stages with each set of kernels there is (C,
:mod:`unscene3d.native`; numba, :mod:`unscene3d.oversegment_kernels`), then compares the output with the
C++ Segmentator's reference files and the ScanNet release segments when they are present.

    python benchmarks/oversegment_speed.py [mesh.ply] [--repeats 15]

The default mesh is ``../shared/data/scannet/scene0000_00/scene0000_00_vh_clean_2.ply`` relative to
the repository root. Anchor: the C++ tool (-O3) takes 0.12 s for the whole process on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from unscene3d import native, oversegment_kernels
from unscene3d.io.ply import read_ply
from unscene3d.io.segments import read_segs_json
from unscene3d.oversegment import (
    _adjacency_from_edges,
    _check_mesh,
    compact_labels,
    oversegment,
    partition_agreement,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MESH = (
    REPO_ROOT.parent / "shared" / "data" / "scannet" / "scene0000_00" / "scene0000_00_vh_clean_2.ply"
)


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stage_times(kernels, vertices: np.ndarray, faces: np.ndarray, repeats: int) -> dict[str, float]:
    """Median time of each stage of oversegment (scannet variant, default parameters) with ``kernels``."""
    points, tris = _check_mesh(vertices, faces)
    normals = kernels.vertex_normals(points, tris)
    edge_a, edge_b = kernels.edge_endpoints(tris)
    weights = kernels.edge_weights(points, normals, None, edge_a, edge_b, 0.05)
    depth = 2 * (len(weights).bit_length() - 1)
    order = kernels.std_sort_order(weights, depth)
    seg_ids = kernels.felzenszwalb(len(points), edge_a, edge_b, weights, order, np.float32(0.01), 20)
    labels, _ = compact_labels(seg_ids)
    stages = {
        "input checks + float32 copy": lambda: _check_mesh(vertices, faces),
        "vertex normals": lambda: kernels.vertex_normals(points, tris),
        "edge list": lambda: kernels.edge_endpoints(tris),
        "edge weights": lambda: kernels.edge_weights(points, normals, None, edge_a, edge_b, 0.05),
        "sort (std::sort order)": lambda: kernels.std_sort_order(weights, depth),
        "union-find, both passes": lambda: kernels.felzenszwalb(
            len(points), edge_a, edge_b, weights, order, np.float32(0.01), 20
        ),
        "compact labels": lambda: compact_labels(seg_ids),
        "segment adjacency": lambda: _adjacency_from_edges(labels, edge_a, edge_b),
    }
    return {name: median_seconds(run, repeats) for name, run in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mesh", type=Path, nargs="?", default=DEFAULT_MESH)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if not args.mesh.is_file():
        raise SystemExit(f"mesh not found: {args.mesh} (pass the path of a ScanNet *_vh_clean_2.ply)")

    mesh = read_ply(args.mesh)
    print(f"{args.mesh.name}: {len(mesh.vertices):,} vertices, {len(mesh.faces):,} faces")

    start = time.perf_counter()
    oversegment(mesh.vertices, mesh.faces)
    print(f"first call ({'C kernels' if native.available() else 'numba cache load or compile'}): "
          f"{time.perf_counter() - start:.3f} s")

    total = median_seconds(lambda: oversegment(mesh.vertices, mesh.faces), args.repeats)
    print(f"oversegment, scannet (0.01, 20): median {total * 1000:.1f} ms over {args.repeats} runs")
    oversegment(mesh.vertices, mesh.faces, mesh.colors, variant="unscene3d")
    colour_total = median_seconds(
        lambda: oversegment(mesh.vertices, mesh.faces, mesh.colors, variant="unscene3d"), args.repeats
    )
    print(f"oversegment, unscene3d (0.005, 50): median {colour_total * 1000:.1f} ms")
    for label, kernels in (("C", native), ("numba", oversegment_kernels)):
        if kernels is native and not native.available():
            print("C kernels: not built (no C compiler at install)")
            continue
        print(f"stages with the {label} kernels:")
        for name, seconds in stage_times(kernels, mesh.vertices, mesh.faces, args.repeats).items():
            print(f"  {name:28s} {seconds * 1000:7.2f} ms")

    scene_dir = args.mesh.parent
    stem = args.mesh.name.removesuffix(".ply")
    references = [
        (k, m, scene_dir.parent / "segmentator_reference" / f"{stem}.k{k}_min{m}.segs.json")
        for k, m in ((0.01, 20), (0.05, 100))
    ]
    references.append((0.01, 20, scene_dir / f"{stem}.0.010000.segs.json"))
    for k, min_verts, path in references:
        if not path.is_file():
            continue
        reference = read_segs_json(path)
        seg_ids = oversegment(mesh.vertices, mesh.faces, k_thresh=k, min_verts=min_verts).seg_ids
        fraction, ours, theirs = partition_agreement(seg_ids, reference)
        same_ids = float(np.mean(seg_ids == reference))
        print(
            f"vs {path.name} (k={k}, min={min_verts}): {fraction * 100:.3f} % of vertices in the "
            f"matched segment (Hungarian), segments {ours} vs {theirs}, identical ids {same_ids * 100:.2f} %"
        )


if __name__ == "__main__":
    main()
