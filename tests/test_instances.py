"""The instance-mask container on sets small enough to check by hand."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from unscene3d.instances import Instances
from unscene3d.scene import Scene

# three masks over four units; queries 7, 8, 9
MASKS = np.array([[1, 1, 0, 0],
                  [0, 0, 1, 0],
                  [0, 1, 1, 1]], dtype=bool)


def three() -> Instances:
    return Instances(MASKS, [0.2, 0.9, 0.5], queries=np.array([7, 8, 9]))


def test_fields_are_checked_to_have_one_entry_per_mask() -> None:
    found = three()
    assert len(found) == 3 and found.num_units == 4
    assert found.queries.tolist() == [7, 8, 9] and "queries" in repr(found)
    assert found.scores.dtype == np.float64
    with pytest.raises(ValueError, match="3 masks need 3 scores"):
        Instances(MASKS, [0.2, 0.9])
    with pytest.raises(ValueError, match="field 'queries' needs 3 entries"):
        Instances(MASKS, [0.2, 0.9, 0.5], queries=np.array([7, 8]))
    with pytest.raises(ValueError, match="finite"):
        Instances(MASKS, [0.2, np.nan, 0.5])
    with pytest.raises(ValueError, match=r"\(K, N\)"):
        Instances(MASKS[0], [0.2])
    with pytest.raises(ValueError, match="cannot name a field"):
        Instances(MASKS, [0.2, 0.9, 0.5], num_units=np.zeros(3))
    with pytest.raises(AttributeError, match="no field 'source'"):
        found.source  # noqa: B018
    # non-zero integers are in the mask, as in the benchmark files
    assert Instances(np.array([[0, 2, 1]]), [1.0]).masks.tolist() == [[False, True, True]]


def test_indexing_acts_on_every_field() -> None:
    found = three()
    second = found[1]  # one int keeps the set two-dimensional
    assert second.masks.tolist() == [[False, False, True, False]]
    assert second.scores.tolist() == [0.9] and second.queries.tolist() == [8]
    assert found[-1].queries.tolist() == [9]
    assert found[1:].queries.tolist() == [8, 9]
    assert found[np.array([True, False, True])].queries.tolist() == [7, 9]
    assert found[[2, 0]].scores.tolist() == [0.5, 0.2]
    assert found[[]].masks.shape == (0, 4) and len(found[[]].queries) == 0
    for bad in (3, -4):
        with pytest.raises(IndexError, match="out of range"):
            found[bad]
    with pytest.raises(IndexError, match="bool index of 2"):
        found[np.array([True, False])]
    with pytest.raises(IndexError, match="1-D bool or int"):
        found[np.array([0.5])]
    with pytest.raises(TypeError, match="not iterable"):
        masks, scores = Instances(MASKS[:2], [0.1, 0.2])  # would unpack two sets, silently


def test_cat_and_sorting() -> None:
    found = three()
    both = Instances.cat([found[:1], found[2:], found[1]])
    assert both.queries.tolist() == [7, 9, 8] and both.scores.tolist() == [0.2, 0.5, 0.9]
    assert both.sorted_by_score().queries.tolist() == [8, 9, 7]
    ties = Instances(MASKS, [0.5, 0.5, 0.9]).sorted_by_score()
    assert ties.masks.tolist() == MASKS[[2, 0, 1]].tolist()  # ties keep their order
    with pytest.raises(ValueError, match="over 3 and 4 units"):
        Instances.cat([found, Instances(MASKS[:, :3], [0.1, 0.2, 0.3], queries=np.zeros(3))])
    with pytest.raises(ValueError, match="fields"):
        Instances.cat([found, Instances(MASKS, [0.1, 0.2, 0.3])])
    with pytest.raises(ValueError, match="at least one"):
        Instances.cat([])
    assert len(Instances.cat([Instances.empty(4, queries=np.int64), found])) == 3


def test_masks_over_segments_map_to_vertices_and_input_points() -> None:
    segments = Instances(np.array([[True, False], [False, True]]), [0.9, 0.4], source=np.array([3, -1]))
    vertices = segments.over(np.array([1, 0, 0, 1, 1]))
    assert vertices.masks.astype(int).tolist() == [[0, 1, 1, 0, 0], [1, 0, 0, 1, 1]]
    assert vertices.scores.tolist() == [0.9, 0.4] and vertices.source.tolist() == [3, -1]
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        segments.over(np.array([0, 2]))
    # a cloud whose file has a NaN row between its two points: that row is in no mask
    cloud = Scene(name="cloud", vertices=np.zeros((2, 3)), faces=np.zeros((0, 3), np.int64),
                  input_index=np.array([0, 2]), num_input_points=3)
    per_point = Instances(np.array([[True, True], [False, True]]), [0.9, 0.4]).to_input(cloud)
    assert per_point.masks.astype(int).tolist() == [[1, 0, 1], [0, 0, 1]]


def test_a_set_survives_pickling() -> None:  # worker processes send results back this way
    copy = pickle.loads(pickle.dumps(three()))
    assert copy.queries.tolist() == [7, 8, 9] and copy.masks.tolist() == MASKS.tolist()
