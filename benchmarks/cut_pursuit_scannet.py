"""Cut pursuit (the superpoint method of SPG / Superpoint Transformer) against our point-graph Felzenszwalb, on
scene0000_00's vertices without faces (docs/benchmarks.md, "Point clouds"). Not a dependency of the package:

    pip install cut-pursuit-py && python benchmarks/cut_pursuit_scannet.py [--data ../shared/data]

Same graph (2 cm voxels, 8 neighbours) and the same oriented normals for both; cut pursuit's features are the
normals, or the normals and the position in units of 2 m; each component taken as an instance (scores = size),
as the Felzenszwalb baseline does, and compared with the mesh's Felzenszwalb segments (k 0.05, min 500).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cut_pursuit_py
import numpy as np

from unscene3d.baselines.common import partition_to_instances
from unscene3d.evaluation import evaluate_scenes
from unscene3d.io.scan import load_scan
from unscene3d.normals import neighbour_graph, orient_normals, pca_normals
from unscene3d.oversegment import oversegment, partition_agreement

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    scene = load_scan(args.data / "scannet" / "scene0000_00", load_frames=False, load_gt=True)
    mesh = oversegment(scene.vertices, scene.faces, k_thresh=0.05, min_verts=500).labels
    graph = neighbour_graph(scene.vertices)
    normals = orient_normals(graph, pca_normals(graph))
    features = {"normals": normals, "normals + position / 2 m": np.hstack([normals, graph.points / 2.0])}
    for name, values in features.items():
        values = np.ascontiguousarray(values, dtype=np.float32)
        for strength in (0.01, 1.0, 100.0):
            start = time.perf_counter()
            components = cut_pursuit_py.perform_cut_pursuit(
                strength, values.shape[1], values, np.ones(len(graph.edge_a), np.float32),
                graph.edge_a.astype(np.uint32), graph.edge_b.astype(np.uint32), False,
            )
            seconds = time.perf_counter() - start
            labels = np.asarray(components, dtype=np.int64)[graph.voxel_of_point]
            found = partition_to_instances(labels)
            result = evaluate_scenes([(scene.name, found, scene.gt)]).overall
            print(f"{name:26s} strength {strength:6g}: {len(np.unique(labels)):4d} components, {len(found):3d} "
                  f"instances, {100 * partition_agreement(mesh, labels)[0]:.1f}% in the matched mesh segment, "
                  f"AP / AP50 / AP25 {result['AP']:.1f} / {result['AP50']:.1f} / {result['AP25']:.1f},"
                  f" {seconds:.1f} s")


if __name__ == "__main__":
    main()
