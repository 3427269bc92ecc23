import numpy as np
import pytest

from unscene3d.baselines import felzenszwalb_instances, hdbscan_instances
from unscene3d.baselines.common import partition_to_instances
from unscene3d.baselines.hdbscan import voxel_indices
from unscene3d.evaluation import evaluate_scenes
from unscene3d.synthetic import make_synthetic_scene


def test_partition_to_instances_orders_by_size_and_drops_small():
    labels = np.array([3] * 150 + [1] * 300 + [2] * 99 + [-1] * 51)
    found = partition_to_instances(labels)
    assert found.masks.shape == (2, 600)
    np.testing.assert_array_equal(found.masks[0], labels == 1)
    np.testing.assert_array_equal(found.masks[1], labels == 3)
    np.testing.assert_allclose(found.scores, [300 / 600, 150 / 600])


def test_voxel_indices_groups_points_in_the_same_cell():
    points = np.array([[0.0, 0, 0], [0.04, 0.01, 0.0], [0.06, 0, 0], [0.0, 0.0, 0.2]])
    index, count = voxel_indices(points, 0.05)
    assert count == 3
    assert index[0] == index[1] and len({index[0], index[2], index[3]}) == 3


@pytest.fixture(scope="module")
def synthetic_scene():
    return make_synthetic_scene(0)


@pytest.mark.parametrize("run", [felzenszwalb_instances, hdbscan_instances])
def test_baselines_give_disjoint_scored_instances_that_find_objects(synthetic_scene, run):
    found = run(synthetic_scene)
    assert found.num_units == synthetic_scene.num_vertices and len(found) > 0
    assert found.masks.sum(axis=0).max() == 1  # a partition: no vertex in two instances
    assert found.masks.sum(axis=1).min() >= 100
    assert np.all(np.diff(found.scores) <= 0)
    result = evaluate_scenes([(synthetic_scene.name, found, synthetic_scene.gt)])
    # Both baselines find at least some objects of the synthetic room at IoU 0.25.
    assert result.overall["AP25"] > 5  # percent
