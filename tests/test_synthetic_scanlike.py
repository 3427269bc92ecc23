"""The scan-like training scenes: determinism, ground truth, what a scanner sees, variants, speed and the CLI."""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.io.benchmark import read_gt_txt
from unscene3d.io.scan import load_scan
from unscene3d.proposals.training import SCENES_EDITION, TrainingConfig, example_file, generated_scene
from unscene3d.synthetic import make_training_scene
from unscene3d.synthetic.scanner import inside_polygon

WALL, FLOOR = 1, 2


@pytest.fixture(scope="module")
def room_mesh():
    return make_training_scene(5, kind="room", as_cloud=False)


@pytest.fixture(scope="module")
def l_room_cloud():
    return make_training_scene(7, kind="l-room", as_cloud=True)


@pytest.fixture(scope="module")
def tabletop():
    return make_training_scene(0, kind="tabletop", as_cloud=True)


def _check_ground_truth(scene) -> None:
    gt = scene.gt
    assert gt.shape == (scene.num_vertices,) and gt.dtype == np.int64
    assert np.all(gt // 1000 > 0), "every point carries a label"
    ids, counts = np.unique(gt[gt % 1000 > 0], return_counts=True)
    assert counts.min() >= 100, "every instance holds at least 100 points"
    instance = ids % 1000
    assert len(np.unique(instance)) == len(instance), "an instance id has one label"
    assert {WALL, FLOOR} <= set((ids // 1000).tolist())
    objects = ids[~np.isin(ids // 1000, (WALL, FLOOR))]
    assert len(objects) >= 3


def test_same_seed_gives_bit_identical_scenes(room_mesh, tabletop):
    for scene, again in ((room_mesh, make_training_scene(5, kind="room", as_cloud=False)),
                         (tabletop, make_training_scene(0, kind="tabletop", as_cloud=True))):
        for name in ("vertices", "faces", "colors", "gt"):
            assert getattr(scene, name).tobytes() == getattr(again, name).tobytes(), name
        assert scene.name == again.name


def test_seed_alone_draws_the_kind_and_the_variant():
    scene = make_training_scene(0)
    assert scene.name == "scanlike_00000_tabletop_cloud"
    other = make_training_scene(6)
    assert other.name.endswith("_mesh") and other.has_faces
    assert not np.array_equal(scene.gt[:100], other.gt[:100])


def test_ground_truth_is_complete_and_counts(room_mesh, l_room_cloud, tabletop):
    for scene in (room_mesh, l_room_cloud, tabletop):
        _check_ground_truth(scene)
    # A furnished room holds many objects, as a real one does (scene0000_00: 52).
    objects = np.unique(room_mesh.gt[~np.isin(room_mesh.gt // 1000, (WALL, FLOOR)) & (room_mesh.gt % 1000 > 0)])
    assert len(objects) >= 15


def test_mesh_variant_is_a_valid_partial_mesh(room_mesh):
    faces = room_mesh.faces
    assert room_mesh.has_faces and faces.dtype == np.int64
    assert faces.min() == 0 and faces.max() == room_mesh.num_vertices - 1
    assert len(np.unique(faces)) == room_mesh.num_vertices
    assert room_mesh.colors.shape == (room_mesh.num_vertices, 3) and room_mesh.colors.dtype == np.uint8
    # Noisy but metric: the floor lies at z = 0 to within a few centimetres.
    floor = room_mesh.vertices[room_mesh.gt // 1000 == FLOOR, 2]
    assert abs(np.median(floor)) < 0.005 and 0.0005 < np.std(floor) < 0.02


def test_scanner_sees_only_part_of_the_room(room_mesh):
    """Holes: the floor is not fully covered (under furniture, out of view), unlike an unscanned mesh."""
    floor = room_mesh.vertices[room_mesh.gt // 1000 == FLOOR]
    cells = np.unique(np.floor(floor[:, :2] / 0.1).astype(np.int64), axis=0)
    lo, hi = cells.min(axis=0), cells.max(axis=0)
    box_cells = np.prod(hi - lo + 1)
    assert len(cells) < 0.95 * box_cells


def test_cloud_variants(l_room_cloud, tabletop):
    assert not l_room_cloud.has_faces and l_room_cloud.faces.shape == (0, 3)
    # The L-shaped room has six walls, and no point in its missing corner.
    walls = np.unique(l_room_cloud.gt[l_room_cloud.gt // 1000 == WALL])
    assert len(walls) == 6
    xy = l_room_cloud.vertices[:, :2]
    corner = xy.max(axis=0)
    floor = l_room_cloud.gt // 1000 == FLOOR
    outline = np.array([[0, 0], [corner[0], 0], corner, [0, corner[1]]])
    assert inside_polygon(xy[floor][:5], outline).all()
    # A tabletop is one frame: a sensor position, every point in front of it, mostly near (about 1 m).
    assert tabletop.sensor is not None and tabletop.sensor.shape == (3,)
    distance = np.linalg.norm(tabletop.vertices - tabletop.sensor, axis=1)
    assert distance.min() > 0.3 and np.median(distance) < 2.0
    table = tabletop.gt // 1000 == 7
    assert table.sum() > 1000


def test_some_scenes_have_no_colour():
    scene = make_training_scene(10)  # seed 10 draws a tabletop without colour
    assert scene.colors is None
    _check_ground_truth(scene)


def test_bad_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_training_scene(0, kind="garage")


def test_a_large_room_takes_at_most_three_seconds_of_cpu():
    start = time.process_time()
    make_training_scene(4, kind="l-room", as_cloud=False)
    assert time.process_time() - start < 3.0


def test_training_config_keeps_rooms_by_default_and_offers_scanlike(tmp_path):
    assert TrainingConfig().generator == "rooms"
    assert TrainingConfig(generator="scanlike").to_dict()["generator"] == "scanlike"
    with pytest.raises(ValueError, match="generator"):
        TrainingConfig(generator="castles")
    assert generated_scene(0, "scanlike").name == make_training_scene(0).name
    assert generated_scene(1).name == "synthetic_0001_cloud"
    assert example_file(tmp_path, 3, "rooms") != example_file(tmp_path, 3, "scanlike")
    assert example_file(tmp_path, 3, "rooms").name == f"rooms{SCENES_EDITION}_3.npz"  # a new edition, a new file


def test_cli_writes_scanlike_scenes_with_ground_truth(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["synthetic", "--scanlike", "--kind", "tabletop", "--mesh", "-o", str(tmp_path),
                                 "--seed", "3"])
    assert result.exit_code == 0, result.output
    (ply,) = tmp_path.glob("*.ply")
    scene = load_scan(ply)
    assert scene.has_faces
    gt = read_gt_txt(tmp_path / "gt" / f"{ply.stem}.txt", scene.num_vertices)
    assert np.all(gt // 1000 > 0)
    refused = runner.invoke(app, ["synthetic", "--kind", "room", "-o", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "error:" in refused.output and "--scanlike" in refused.output
