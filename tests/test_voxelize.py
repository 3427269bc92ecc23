"""Voxelisation (vertex -> voxel) and de-voxelisation (voxel -> vertex) are exact."""

from __future__ import annotations

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.scene import Scene
from unscene3d.voxelize import (
    InputChannels,
    coarse_voxel_index,
    devoxelize,
    grid_origin,
    scene_point_features,
    voxel_coordinates,
    voxelize,
)


def test_voxel_coordinates_floor_negative_values():
    points = np.array([[-0.001, 0.0, 0.019], [-0.02, -0.0201, 0.02], [0.039, -0.04, 1.0]])
    coords = voxel_coordinates(points, 0.02)
    assert coords.tolist() == [[-1, 0, 0], [-1, -2, 1], [1, -2, 50]]


def test_round_trip_with_duplicates_averages_and_restores():
    points = np.array([[0.001, 0.001, 0.001], [0.015, 0.002, 0.003], [0.05, 0.0, 0.0], [-0.01, -0.01, -0.01]])
    features = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0], [7.0, 1.0]], dtype=np.float32)
    vox = voxelize(points, features, 0.02)
    assert vox.num_voxels == 3
    assert vox.counts.sum() == 4
    # The first two points share voxel (0, 0, 0); their feature is the mean.
    assert vox.inverse[0] == vox.inverse[1] != vox.inverse[2]
    np.testing.assert_allclose(vox.features[vox.inverse[0]], [2.0, 1.0])
    np.testing.assert_array_equal(vox.coords[vox.inverse], voxel_coordinates(points, 0.02))
    restored = devoxelize(vox.features, vox.inverse)
    np.testing.assert_allclose(restored[2:], features[2:])
    np.testing.assert_allclose(restored[:2], [[2.0, 1.0], [2.0, 1.0]])


def test_round_trip_is_identity_for_one_point_per_voxel():
    rng = np.random.default_rng(0)
    coords = rng.choice(np.arange(-50, 50), size=(300, 3))
    coords = np.unique(coords, axis=0)
    points = (coords + 0.5) * 0.02
    features = rng.normal(size=(len(points), 4)).astype(np.float32)
    vox = voxelize(points, features, 0.02)
    assert vox.num_voxels == len(points)
    np.testing.assert_array_equal(devoxelize(vox.features, vox.inverse), features)


def test_coarse_voxel_index_finds_the_containing_voxel():
    fine = np.array([[0, 0, 0], [1, 1, 1], [2, 0, 0], [-1, 3, 5], [-2, 2, 4]])
    coarse = np.array([[1, 0, 0], [-1, 1, 2], [0, 0, 0]])
    np.testing.assert_array_equal(coarse_voxel_index(fine, coarse, 2), [2, 2, 0, 1, 1])
    with pytest.raises(ValueError):
        coarse_voxel_index(np.array([[10, 10, 10]]), coarse, 2)


def test_grid_origin_is_aligned_below_minimum():
    origin = grid_origin(np.array([[-17, 3, 40], [5, -1, 33]]))
    np.testing.assert_array_equal(origin, [-32, -16, 32])


def test_bad_points_raise_input_error():
    with pytest.raises(InputError, match="shape"):
        voxelize(np.zeros((4, 2)))
    with pytest.raises(InputError, match="NaN"):
        voxelize(np.array([[0.0, np.nan, 0.0]]))


def test_scene_features_colour_and_normals():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float64)
    colors = np.array([[0, 255, 128]] * 3, dtype=np.uint8)
    scene = Scene(name="tri", vertices=vertices, faces=np.array([[0, 1, 2]]), colors=colors)
    features = scene_point_features(scene, InputChannels(use_normals=True))
    assert features.shape == (3, 6)
    np.testing.assert_allclose(features[0, :3], [-0.5, 0.5, 128 / 255 - 0.5], atol=1e-6)
    np.testing.assert_allclose(np.abs(features[:, 5]), 1.0, atol=1e-6)
    cloud = Scene(name="cloud", vertices=vertices, faces=np.zeros((0, 3), np.int64), colors=None)
    assert np.all(scene_point_features(cloud) == 0)
    # A point cloud gets estimated normals: here the plane's, turned up.
    estimated = scene_point_features(cloud, InputChannels(use_normals=True))
    np.testing.assert_allclose(estimated[:, 3:], [[0, 0, 1]] * 3, atol=1e-6)


def test_geometry_only_input_is_a_constant_occupancy_channel_after_the_normals():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float64)
    colors = np.array([[0, 255, 128]] * 3, dtype=np.uint8)
    scene = Scene(name="tri", vertices=vertices, faces=np.array([[0, 1, 2]]), colors=colors)
    channels = InputChannels(use_color=False, use_normals=True)
    features = scene_point_features(scene, channels)
    assert channels.count == 4 and channels.color is None and channels.normals == slice(0, 3)
    np.testing.assert_allclose(np.abs(features[:, 2]), 1.0, atol=1e-6)  # the triangle's normal is +-z
    np.testing.assert_array_equal(features[:, 3], 1.0)
    assert np.array_equal(scene_point_features(scene, InputChannels(use_color=False)), np.ones((3, 1)))
