"""Do the backbone's per-vertex features carry object information? Segment-pair separability on ScanNet.

Per-vertex features (decoder level at stride 2) are averaged over the scan's release segments
(``*_vh_clean_2.0.010000.segs.json``). Each segment takes the ground-truth instance that covers most of
it; segments at least 80% inside one instance of a benchmark (foreground) class are kept. For every pair
of kept segments the cosine similarity of their features is compared between pairs inside the same
instance and pairs across instances: the mean cosine of each group and the ROC AUC of "same instance"
scored by cosine (0.5 = no information, 1 = perfect). "near" restricts pairs to segment centroids
closer than 1 m -- the hard, relevant negatives for a graph cut. Rows: random initialisation with the
checkpoint's architecture (several seeds), each checkpoint, and the raw input colour as a reference.

    python benchmarks/feature_separability.py [SCAN] --checkpoint RUN_DIR/checkpoint [--checkpoint ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from unscene3d.evaluation import SCANNET_BENCHMARK_CLASS_IDS
from unscene3d.features.features3d import extract_vertex_features, load_backbone
from unscene3d.io.scan import load_scan
from unscene3d.io.segments import read_segs_json
from unscene3d.model.backbone import build_backbone
from unscene3d.oversegment import compact_labels
from unscene3d.train.pretrain import preset_config
from unscene3d.voxelize import scene_point_features

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCAN = REPO_ROOT.parent / "shared" / "data" / "scannet" / "scene0000_00"
MIN_PURITY = 0.8
NEAR_METRES = 1.0


def segment_instances(seg_labels: np.ndarray, num_segments: int, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(instance gt value per segment, mask of segments kept: pure enough and on a foreground instance)."""
    instance = np.zeros(num_segments, dtype=np.int64)
    keep = np.zeros(num_segments, dtype=bool)
    order = np.argsort(seg_labels, kind="stable")
    bounds = np.searchsorted(seg_labels[order], np.arange(num_segments + 1))
    for seg in range(num_segments):
        values, counts = np.unique(gt[order[bounds[seg]:bounds[seg + 1]]], return_counts=True)
        best = int(np.argmax(counts))
        instance[seg] = values[best]
        label, inst = divmod(int(values[best]), 1000)
        keep[seg] = counts[best] >= MIN_PURITY * counts.sum() and inst > 0 and label in SCANNET_BENCHMARK_CLASS_IDS
    return instance, keep


def pooled(features: np.ndarray, seg_labels: np.ndarray, num_segments: int) -> np.ndarray:
    sums = np.zeros((num_segments, features.shape[1]), dtype=np.float64)
    np.add.at(sums, seg_labels, features)
    return sums / np.bincount(seg_labels, minlength=num_segments)[:, None]


def pair_scores(segment_features: np.ndarray, instance: np.ndarray, centroids: np.ndarray) -> dict[str, float]:
    unit = segment_features / np.maximum(np.linalg.norm(segment_features, axis=1, keepdims=True), 1e-12)
    cosine = unit @ unit.T
    upper = np.triu_indices(len(unit), k=1)
    same = (instance[:, None] == instance[None, :])[upper]
    near = (np.linalg.norm(centroids[:, None] - centroids[None, :], axis=2) < NEAR_METRES)[upper]
    values = cosine[upper]
    scores = {}
    for name, subset in (("all", np.ones_like(same)), ("near", near)):
        s, v = same[subset], values[subset]
        scores[f"{name}_same_cos"] = float(v[s].mean())
        scores[f"{name}_diff_cos"] = float(v[~s].mean())
        scores[f"{name}_auc"] = float(roc_auc_score(s, v))
        scores[f"{name}_pairs"] = (int(s.sum()), int((~s).sum()))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scan", nargs="?", type=Path, default=DEFAULT_SCAN)
    parser.add_argument("--checkpoint", action="append", type=Path, default=[],
                        help="checkpoint folder / run folder (repeatable)")
    parser.add_argument("--preset", default="cpu-small", help="architecture of the random init without checkpoints")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of random initialisations")
    args = parser.parse_args()

    scene = load_scan(args.scan, load_frames=False, load_gt=True)
    if scene.gt is None:
        raise SystemExit(f"{args.scan}: no ground truth")
    segs_files = sorted(Path(args.scan).glob("*_vh_clean_2.0.010000.segs.json"))
    if not segs_files:
        raise SystemExit(f"{args.scan}: no release segments (*_vh_clean_2.0.010000.segs.json)")
    seg_labels, num_segments = compact_labels(read_segs_json(segs_files[0], scene.vertices.shape[0]))
    instance, keep = segment_instances(seg_labels, num_segments, scene.gt)
    centroids = pooled(scene.vertices, seg_labels, num_segments)[keep]
    print(f"{scene.name}: {num_segments} segments, {keep.sum()} on foreground instances "
          f"({len(np.unique(instance[keep]))} instances), purity >= {MIN_PURITY}")

    rows: list[tuple[str, np.ndarray]] = [("input colour (rgb/255-0.5)", scene_point_features(scene))]
    if args.checkpoint:
        _, config = load_backbone(args.checkpoint[0])
    else:
        config = preset_config(args.preset).backbone
    for seed in args.seeds:
        rows.append((f"random init (seed {seed})", extract_vertex_features(build_backbone(config, seed=seed), scene)))
    for checkpoint in args.checkpoint:
        model, _ = load_backbone(checkpoint)
        rows.append((f"pretrained {checkpoint}", extract_vertex_features(model, scene)))

    header = f"{'features':<50} {'AUC':>6} {'cos same':>9} {'cos diff':>9} | {'AUC near':>8} {'same':>6} {'diff':>6}"
    print(header)
    for name, features in rows:
        s = pair_scores(pooled(features, seg_labels, num_segments)[keep], instance[keep], centroids)
        print(f"{name[:50]:<50} {s['all_auc']:6.3f} {s['all_same_cos']:9.3f} {s['all_diff_cos']:9.3f} | "
              f"{s['near_auc']:8.3f} {s['near_same_cos']:6.3f} {s['near_diff_cos']:6.3f}")
    pairs = pair_scores(np.eye(int(keep.sum())), instance[keep], centroids)
    print(f"pairs: all {pairs['all_pairs'][0]} same / {pairs['all_pairs'][1]} different; "
          f"near {pairs['near_pairs'][0]} / {pairs['near_pairs'][1]}")


if __name__ == "__main__":
    main()
