"""Segment pooling and the handcrafted descriptor."""

from __future__ import annotations

import numpy as np
import pytest

from unscene3d.features.handcrafted import handcrafted_segment_features, rgb_to_lab
from unscene3d.features.pooling import pool_segment_features
from unscene3d.oversegment import oversegment
from unscene3d.synthetic import make_synthetic_scene


def test_pool_means_nonempty_vertices_and_fills_empty_segments_from_neighbours() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    feats = np.array([[2, 0], [4, 0], [0, 0], [0, 6], [0, 2], [0, 0], [0, 0], [1, 1]], dtype=np.float32)
    adjacency = np.array([[0, 2], [1, 2], [2, 3]])
    pooled = pool_segment_features(feats, labels, 5, adjacency)
    np.testing.assert_allclose(pooled[0], [3, 0])  # the all-zero vertex is empty, not averaged in
    np.testing.assert_allclose(pooled[1], [0, 4])
    np.testing.assert_allclose(pooled[2], ([3, 0] + np.array([0, 4]) + [1, 1]) / 3)  # neighbours' mean
    np.testing.assert_allclose(pooled[3], [1, 1])
    # segment 4 has no vertex and no neighbour: the mean of the segments that have features
    np.testing.assert_allclose(pooled[4], ([3, 0] + np.array([0, 4]) + [1, 1]) / 3)
    assert pooled.dtype == np.float32


def test_pool_valid_mask_and_shape_check() -> None:
    labels = np.array([0, 0, 1])
    feats = np.array([[1.0], [3.0], [5.0]])
    pooled = pool_segment_features(feats, labels, 2, np.zeros((0, 2)), valid=np.array([True, False, True]))
    np.testing.assert_allclose(pooled[:, 0], [1, 5])
    with pytest.raises(ValueError):
        pool_segment_features(feats[:2], labels, 2, np.zeros((0, 2)))


def test_rgb_to_lab_reference_colours() -> None:
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], dtype=np.uint8))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.1)


def test_handcrafted_features_are_standardised_and_separate_objects_from_walls() -> None:
    scene = make_synthetic_scene(1)
    seg = oversegment(scene.vertices, scene.faces, scene.colors, variant="unscene3d")
    feats = handcrafted_segment_features(scene, seg.labels, seg.num_segments, seg.adjacency)
    assert feats.shape == (seg.num_segments, 17) and np.isfinite(feats).all()
    np.testing.assert_allclose(feats.mean(axis=0), 0, atol=1e-4)
    # segments inside one GT instance are on average more alike than segments of different instances
    instance = np.array([np.bincount(scene.gt[seg.labels == s]).argmax() for s in range(seg.num_segments)])
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    cos = unit @ unit.T
    same = instance[:, None] == instance[None, :]
    np.fill_diagonal(same, False)
    different = instance[:, None] != instance[None, :]
    assert cos[same].mean() > cos[different].mean() + 0.2


def test_handcrafted_without_colours_or_normals() -> None:
    scene = make_synthetic_scene(2)
    scene.colors = None
    seg = oversegment(scene.vertices, scene.faces, variant="scannet")
    feats = handcrafted_segment_features(scene, seg.labels, seg.num_segments, seg.adjacency)
    assert np.isfinite(feats).all()
