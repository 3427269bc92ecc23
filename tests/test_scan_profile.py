"""The scan profile (unscene3d.profile): a generated room and a generated tabletop written in other units and
axes are read back into the same working frame and segmented into the same masks."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from unscene3d.baselines import felzenszwalb_instances
from unscene3d.errors import InputError
from unscene3d.io.ply import write_ply
from unscene3d.io.scan import load_scan
from unscene3d.profile import TABLETOP_LENGTH_SCALE, TO_Z_UP
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.synthetic.tabletop import make_tabletop_scene

# A file's axes for each up axis: the z-up scene's coordinates written with that axis up.
AXES = ("z", "y", "-y", "x")


def _write(path, scene, *, up="z", units=1.0, colour=True):
    vertices = scene.vertices @ TO_Z_UP[up] * units  # the inverse rotation: R^T x, as rows x R
    write_ply(path, vertices, scene.faces if scene.has_faces else None, scene.colors if colour else None)
    return path


def _matched(reference, other, *, min_iou: float) -> float:
    """The share of the reference's masks (over 1% of the points) with a mask of ``other`` at ``min_iou``."""
    big = reference.masks[reference.masks.sum(axis=1) > 0.01 * reference.masks.shape[1]]
    a, b = big.astype(np.float64), other.masks.astype(np.float64)
    inter = a @ b.T
    iou = inter / (a.sum(1)[:, None] + b.sum(1)[None, :] - inter)
    return float((iou.max(axis=1) >= min_iou).mean())


@pytest.fixture(scope="module")
def room():
    return make_synthetic_scene(0)


@pytest.fixture(scope="module")
def tabletop():
    return make_tabletop_scene(0)


@pytest.mark.parametrize("up", AXES)
def test_room_on_any_axis_reads_back_z_up_and_gives_the_same_masks(tmp_path, room, up):
    scene = load_scan(_write(tmp_path / "room.ply", room, up=up))
    assert scene.profile.up == up and scene.profile.kind == "room"
    assert scene.profile.up_reason.startswith("the floor") or up == "z"
    np.testing.assert_allclose(scene.vertices, room.vertices, atol=1e-5)  # float32 in the file
    reference = felzenszwalb_instances(load_scan(_write(tmp_path / "ref.ply", room)))
    assert _matched(reference, felzenszwalb_instances(scene), min_iou=0.999) == 1.0


@pytest.mark.parametrize("units", [1000.0, 0.001])
def test_room_in_millimetres_or_kilometres_is_rescaled(tmp_path, room, units, caplog):
    with caplog.at_level(logging.INFO, logger="unscene3d.io.scan"):
        scene = load_scan(_write(tmp_path / "room.ply", room, units=units))
    assert scene.profile.units_scale == pytest.approx(1 / units)
    assert "--scale" in caplog.text and ("millimetres" if units > 1 else "kilometres") in caplog.text
    np.testing.assert_allclose(scene.vertices, room.vertices, atol=1e-4)
    reference = felzenszwalb_instances(load_scan(_write(tmp_path / "ref.ply", room)))
    assert _matched(reference, felzenszwalb_instances(scene), min_iou=0.95) >= 0.95


def test_units_that_cannot_be_recognised_are_refused_with_the_flag(tmp_path, room):
    with pytest.raises(InputError, match="pass --scale"):
        load_scan(_write(tmp_path / "room.ply", room, units=1e-7))
    scene = load_scan(_write(tmp_path / "room.ply", room, units=1e-7), scale=1e7)
    assert scene.profile.units_reason == "as given"


def test_a_metric_z_up_room_is_kept_exactly(tmp_path, room):
    path = _write(tmp_path / "room.ply", room)
    scene = load_scan(path)
    assert scene.profile.is_identity() and scene.length_scale == 1.0
    np.testing.assert_array_equal(scene.vertices, load_scan(path, up="z", scale=1.0, kind="room").vertices)


@pytest.mark.parametrize(("up", "units"), [("z", 1.0), ("y", 1.0), ("-y", 1000.0), ("x", 1000.0)])
def test_tabletop_in_any_units_and_axis_gives_the_same_masks(tmp_path, tabletop, up, units):
    scene = load_scan(_write(tmp_path / "table.ply", tabletop, up=up, units=units))
    profile = scene.profile
    assert profile.kind == "tabletop" and profile.up == "support plane"
    assert profile.length_scale == TABLETOP_LENGTH_SCALE
    # levelled and enlarged: the table is the plane z = 0 of the working frame, objects 4x their size
    table = tabletop.gt == 0
    assert np.ptp(scene.vertices[table, 2]) < 0.01 / TABLETOP_LENGTH_SCALE
    assert np.ptp(scene.vertices[:, 0]) == pytest.approx(np.ptp(tabletop.vertices[:, 0]) / TABLETOP_LENGTH_SCALE,
                                                         rel=0.05) or up == "x"
    reference = felzenszwalb_instances(load_scan(_write(tmp_path / "ref.ply", tabletop)))
    assert _matched(reference, felzenszwalb_instances(scene), min_iou=0.9) >= 0.9


def _objects_apart_from_table(scene, gt) -> int:
    """How many objects keep most of their points out of the table's segment."""
    labels = np.full(scene.num_vertices, -1)
    for index, mask in enumerate(felzenszwalb_instances(scene).masks):
        labels[mask] = index
    table_segment = np.bincount(labels[gt == 0] + 1).argmax() - 1
    return sum(int((labels[gt == obj] == table_segment).mean() < 0.5) for obj in np.unique(gt[gt > 0]))


def test_tabletop_settings_keep_the_objects_off_the_table(tmp_path, tabletop):
    path = _write(tmp_path / "table.ply", tabletop, up="-y")
    objects = len(np.unique(tabletop.gt[tabletop.gt > 0]))
    assert _objects_apart_from_table(load_scan(path), tabletop.gt) == objects
    # read as a room, the same frame's objects melt into the table (the room's minimum segment is larger)
    assert _objects_apart_from_table(load_scan(path, kind="room"), tabletop.gt) < objects


def test_a_scan_of_one_colour_is_geometry_only(tmp_path, tabletop, caplog):
    grey = make_tabletop_scene(0)
    grey.colors = np.full_like(grey.colors, 128)
    with caplog.at_level(logging.INFO, logger="unscene3d.io.scan"):
        scene = load_scan(_write(tmp_path / "grey.ply", grey))
    assert scene.colors is None and not scene.profile.has_colour
    assert "geometry-only" in caplog.text
    assert load_scan(_write(tmp_path / "none.ply", tabletop, colour=False)).colors is None
