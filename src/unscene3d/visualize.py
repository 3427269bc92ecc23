"""Colours for label maps, and the coloured PLY files a person can look at (any mesh viewer opens them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unscene3d.instances import Instances
from unscene3d.io.ply import write_ply
from unscene3d.scene import Scene

# Suffix of the coloured PLY that every command writing instances puts beside its benchmark files.
INSTANCES_PLY_SUFFIX = "_instances.ply"
# Header comment of those coloured files, so that tools walking folders for scans can pass them by.
COLOURED_COMMENT = "unscene3d coloured by label, not a scan"

UNLABELED_COLOR = np.array([160, 160, 160], dtype=np.uint8)


def label_colors(labels: np.ndarray, *, unlabeled: int = -1) -> np.ndarray:
    """A distinct, deterministic RGB colour per label; vertices with ``unlabeled`` are grey.

    Colours come from a hash of the label value (not its rank), so the same segment id keeps its colour
    across runs and files.
    """
    labels = np.asarray(labels, dtype=np.int64)
    # A multiplicative hash spreads neighbouring ids over the colour cube (label + 1: 0 would hash to black,
    # and label 0 is the first instance of every file).
    hashed = ((labels + 1).astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFF)
    rgb = np.stack([(hashed >> np.uint64(s)) & np.uint64(0xFF) for s in (16, 8, 0)], axis=1)
    colors = (64 + (rgb.astype(np.int64) * 191) // 255).astype(np.uint8)  # avoid near-black colours
    colors[labels == unlabeled] = UNLABELED_COLOR
    return colors


def masks_to_labels(masks: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """Flatten (K, N) instance masks to one label per vertex (-1 = none).

    Where masks overlap, the higher-scoring mask wins (later masks win when no scores are given).
    """
    num_masks, num_vertices = masks.shape
    labels = np.full(num_vertices, -1, dtype=np.int64)
    order = np.arange(num_masks) if scores is None else np.argsort(scores, kind="stable")
    for index in order:  # ascending score: the best mask is painted last
        labels[masks[index]] = index
    return labels


def write_labels_ply(path: str | Path, scene: Scene, labels: np.ndarray) -> None:
    """The scan (mesh, or point cloud without faces) coloured by per-vertex label, -1 grey; atomic."""
    write_ply(path, scene.vertices, scene.faces if scene.has_faces else None, label_colors(labels),
              comment=COLOURED_COMMENT)


def is_coloured_output(path: str | Path) -> bool:
    """Whether a PLY file is one of the coloured files written by :func:`write_labels_ply` (read from its header)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    return b"comment " + COLOURED_COMMENT.encode("ascii") + b"\n" in head.split(b"end_header", 1)[0]


def write_instances_ply(path: str | Path, scene: Scene, instances: Instances) -> None:
    """The scan coloured by ``instances`` over its vertices (the k-th mask gets :func:`label_colors` of k;
    grey where no mask), the higher-scoring mask winning where masks overlap."""
    write_labels_ply(path, scene, masks_to_labels(instances.masks, instances.scores))
