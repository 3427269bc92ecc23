"""Masked NCut speed: the official-style solver and ours side by side on the same segment graphs.

The official code solves ``scipy.linalg.eigh(D - W, D, subset_by_index=[1, 2])`` on the full
(S, S) matrix at every cut; ours lumps the masked segments into one node and runs Lanczos on the
normalised matrix (see ``unscene3d.pseudo.ncut``). Both run the whole masked-NCut loop (affinity,
solve, partition rules; 20 cuts, official defaults) on identical inputs; the masks must be identical.

Inputs: the real ScanNet scene0000_00 mesh (../shared/data), oversegmented with the colour-aware
``unscene3d`` variant at two granularities chosen to give about 700 and about 1,500 segments, with
the handcrafted descriptor pooled on those segments (the only real features that need no weights),
or with ``--checkpoint`` a pretrained backbone's 3D features.
Without the real scan, synthetic scenes are used instead. Times are the best of ``--repeats`` runs
of the whole loop per scene. ``--threads`` limits the BLAS threads of both solvers (default 1: on a
shared 2-core machine multi-threaded BLAS timings swing by several times run to run).

    python benchmarks/ncut_speed.py [--repeats 3] [--threads 1] [--checkpoint RUN]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _threads_from_argv() -> str:
    # BLAS reads its thread count when numpy is imported, so it is set before any import below
    if "--threads" in sys.argv:
        return sys.argv[sys.argv.index("--threads") + 1]
    return "1"


for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = _threads_from_argv()

import numpy as np  # noqa: E402

from unscene3d.features.handcrafted import handcrafted_segment_features  # noqa: E402
from unscene3d.features.pooling import pool_segment_features  # noqa: E402
from unscene3d.oversegment import oversegment  # noqa: E402
from unscene3d.pseudo.ncut import NCutConfig, masked_ncut  # noqa: E402

SCENE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet" / "scene0000_00"
# (kThresh, segMinVerts) of the unscene3d variant giving ~700 and ~1,500 segments on scene0000_00
GRANULARITIES = {"~700": (0.003, 25), "~1500": (0.001, 12)}
TAUS = (0.55, 0.6, 0.65)


def load_scene():
    if SCENE.is_dir():
        from unscene3d.io.scan import load_scan

        return load_scan(SCENE, load_frames=False)
    from unscene3d.synthetic import make_synthetic_scene

    print(f"{SCENE} not found: using synthetic scene 0")
    return make_synthetic_scene(0)


def timed(features, adjacency, config, repeats):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = masked_ncut(features, adjacency, config)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per solver; the best time counts")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both solvers")
    parser.add_argument("--checkpoint", help="pool this backbone's 3D features instead of the handcrafted ones")
    args = parser.parse_args()
    scene = load_scene()
    vertex_features = None
    if args.checkpoint:
        from unscene3d.features.features3d import extract_vertex_features

        vertex_features = extract_vertex_features(args.checkpoint, scene)
    kind = "3D backbone" if args.checkpoint else "handcrafted"
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    print(f"scene {scene.name}: {scene.num_vertices} vertices; {kind} features; BLAS threads {threads}")
    print(f"{'target':>6} {'segments':>8} {'tau':>5} {'cuts':>4} {'masks':>5} {'official s':>10} {'ours s':>8} "
          f"{'official s/cut':>14} {'ours s/cut':>10} {'ratio':>6} identical")
    all_identical = True
    for target, (k_thresh, min_verts) in GRANULARITIES.items():
        seg = oversegment(
            scene.vertices, scene.faces, scene.colors, variant="unscene3d", k_thresh=k_thresh, min_verts=min_verts
        )
        if vertex_features is None:
            features = handcrafted_segment_features(scene, seg.labels, seg.num_segments, seg.adjacency)
        else:
            features = pool_segment_features(vertex_features, seg.labels, seg.num_segments, seg.adjacency)
        for tau in TAUS:
            ref_time, ref = timed(features, seg.adjacency, NCutConfig(tau=tau, solver="reference"), args.repeats)
            fast_time, fast = timed(features, seg.adjacency, NCutConfig(tau=tau, solver="fast"), args.repeats)
            identical = np.array_equal(ref.masks, fast.masks) and ref.iterations == fast.iterations
            all_identical &= identical
            print(
                f"{target:>6} {seg.num_segments:>8} {tau:>5.2f} {ref.iterations:>4} {len(ref.masks):>5} "
                f"{ref_time:>10.3f} {fast_time:>8.3f} {ref_time / ref.iterations:>14.3f} "
                f"{fast_time / fast.iterations:>10.4f} {ref_time / fast_time:>5.1f}x {identical}"
            )
    print("all masks identical:", all_identical)


if __name__ == "__main__":
    main()
