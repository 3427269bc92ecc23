"""Colours for writing label maps as PLY files a person can look at."""

from __future__ import annotations

import numpy as np

UNLABELED_COLOR = np.array([160, 160, 160], dtype=np.uint8)


def label_colors(labels: np.ndarray, *, unlabeled: int = -1) -> np.ndarray:
    """A distinct, deterministic RGB colour per label; vertices with ``unlabeled`` are grey.

    Colours come from a hash of the label value (not its rank), so the same segment id keeps its colour
    across runs and files.
    """
    labels = np.asarray(labels, dtype=np.int64)
    # A multiplicative hash spreads neighbouring ids over the colour cube.
    hashed = (labels.astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFF)
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
