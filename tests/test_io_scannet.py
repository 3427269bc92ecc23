from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.io.ply import write_ply
from unscene3d.io.scan import load_scan, scan_name
from unscene3d.io.scannet import gt_from_release_files, load_scannet_scene, read_axis_alignment
from unscene3d.io.segments import read_segs_json, write_segs_json

BENCHMARK_CLASSES = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39}
ALIGNMENT = np.array(
    [[0.945519, 0.325568, 0, -5.38439], [-0.325568, 0.945519, 0, -2.87178], [0, 0, 1, -0.06435], [0, 0, 0, 1]]
)

# --- a tiny scene in the ScanNet release layout, solvable by hand -------------------------------------
# Six vertices; segments 10 = {0,1}, 20 = {2,3}, 30 = {4}, 40 = {5}.
# Instance objectId 0 covers segments 10 and 20 (labels 5,5,5,7 -> majority 5) -> 5 * 1000 + 1.
# Instance objectId 3 covers segment 30 (label 7) -> 7004. Vertex 5 is in no group -> 0.
SEGS = [10, 10, 20, 20, 30, 40]
VERTEX_LABELS = [5, 5, 5, 7, 7, 0]
EXPECTED_GT = [5001, 5001, 5001, 5001, 7004, 0]
GROUPS = [
    {"id": 0, "objectId": 0, "label": "chair", "segments": [10, 20]},
    {"id": 1, "objectId": 3, "label": "table", "segments": [30]},
]


def write_labels_ply(path, vertices, labels):
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property ushort label\nend_header\n"
    )
    table = np.empty(len(vertices), dtype=[("xyz", "<f4", 3), ("label", "<u2")])
    table["xyz"] = vertices
    table["label"] = labels
    path.write_bytes(header.encode() + table.tobytes())


def make_release_scene(folder, groups=GROUPS, labels=VERTEX_LABELS):
    folder.mkdir(parents=True)
    name = folder.name
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [1, 3, 2], [0, 4, 5]])
    write_ply(folder / f"{name}_vh_clean_2.ply", vertices, faces, np.zeros((6, 3), np.uint8))
    write_segs_json(folder / f"{name}_vh_clean_2.0.010000.segs.json", np.array(SEGS), name, {"kThresh": "0.01"})
    (folder / f"{name}.aggregation.json").write_text(json.dumps({"sceneId": name, "segGroups": groups}))
    write_labels_ply(folder / f"{name}_vh_clean_2.labels.ply", vertices, labels)
    return folder


def test_release_files_give_hand_checked_gt(tmp_path):
    scene = load_scannet_scene(make_release_scene(tmp_path / "scene0001_00"))
    assert scene.name == "scene0001_00" and scene.frames == []
    assert scene.gt.dtype == np.int64 and scene.gt.tolist() == EXPECTED_GT


def test_release_gt_later_group_wins_overlap_and_ties_take_smaller_label(tmp_path):
    groups = [*GROUPS, {"objectId": 7, "label": "x", "segments": [20, 40]}]
    folder = make_release_scene(tmp_path / "scene0002_00", groups=groups, labels=[5, 5, 9, 9, 7, 9])
    gt = load_scannet_scene(folder).gt
    # objectId 0: labels 5,5,9,9 -> tie, smaller id 5; objectId 7 (segments 20, 40: labels 9,9,9) overwrites.
    assert gt.tolist() == [5001, 5001, 9008, 9008, 7004, 9008]


def test_release_gt_errors(tmp_path):
    folder = make_release_scene(tmp_path / "scene0003_00")
    files = (
        folder / "scene0003_00.aggregation.json",
        folder / "scene0003_00_vh_clean_2.0.010000.segs.json",
        folder / "scene0003_00_vh_clean_2.labels.ply",
    )
    with pytest.raises(InputError, match="'segIndices' has 6 entries, expected one per vertex \\(7\\)"):
        gt_from_release_files(*files, num_vertices=7)
    files[0].write_text(json.dumps({"segGroups": [{"objectId": "a", "segments": [1]}]}))
    with pytest.raises(InputError, match=r"aggregation.json: segGroups\[0\] has no non-negative integer 'objectId'"):
        load_scannet_scene(folder)
    files[0].write_text("{")
    with pytest.raises(InputError, match="aggregation.json: not valid JSON"):
        load_scannet_scene(folder)


def test_incomplete_release_files_give_no_gt_with_warning(tmp_path, caplog):
    folder = make_release_scene(tmp_path / "scene0004_00")
    (folder / "scene0004_00_vh_clean_2.labels.ply").unlink()
    with caplog.at_level(logging.WARNING):
        scene = load_scannet_scene(folder)
    assert scene.gt is None and "missing scene0004_00_vh_clean_2.labels.ply" in caplog.text


def test_benchmark_gt_takes_precedence_and_line_count_is_checked(tmp_path):
    folder = make_release_scene(tmp_path / "scene0005_00")
    (folder / "instance_gt").mkdir()
    (folder / "instance_gt" / "scene0005_00.txt").write_text("0\n1\n2\n3\n4\n5\n")
    assert load_scannet_scene(folder).gt.tolist() == [0, 1, 2, 3, 4, 5]
    assert load_scannet_scene(folder, load_gt=False).gt is None
    (folder / "instance_gt" / "scene0005_00.txt").write_text("0\n1\n2\n")
    with pytest.raises(InputError, match="has 3 lines, expected 6"):
        load_scannet_scene(folder)


def test_axis_alignment_reading(tmp_path):
    meta = tmp_path / "meta.txt"
    meta.write_text("colorHeight = 968\naxisAlignment = " + " ".join(map(str, ALIGNMENT.ravel())) + "\n")
    assert np.array_equal(read_axis_alignment(meta), ALIGNMENT)
    meta.write_text("colorHeight = 968\n")
    assert read_axis_alignment(meta) is None
    meta.write_text("axisAlignment = 1 0 0\n")
    with pytest.raises(InputError, match="meta.txt: axisAlignment has 3 numbers, expected 16"):
        read_axis_alignment(meta)
    meta.write_text("axisAlignment = 1 0 zero\n")
    with pytest.raises(InputError, match="not a list of numbers"):
        read_axis_alignment(meta)
    with pytest.raises(InputError, match="no such file"):
        read_axis_alignment(tmp_path / "absent.txt")


def test_axis_align_without_meta_warns_and_leaves_scene(tmp_path, caplog):
    folder = make_release_scene(tmp_path / "scene0006_00")
    with caplog.at_level(logging.WARNING):
        aligned = load_scannet_scene(folder, axis_align=True)
    assert np.array_equal(aligned.vertices, load_scannet_scene(folder).vertices)
    assert "scene left without axis alignment" in caplog.text


def test_segments_round_trip_and_errors(tmp_path):
    path = tmp_path / "s.segs.json"
    write_segs_json(path, np.array([3, 3, 7]), "sceneX", {"kThresh": 0.01, "segMinVerts": 20})
    assert json.loads(path.read_text()) == {
        "params": {"kThresh": 0.01, "segMinVerts": 20},
        "sceneId": "sceneX",
        "segIndices": [3, 3, 7],
    }
    assert read_segs_json(path, 3).tolist() == [3, 3, 7]
    with pytest.raises(InputError, match="s.segs.json: 'segIndices' has 3 entries, expected one per vertex \\(4\\)"):
        read_segs_json(path, 4)
    for content, problem in [
        ({"sceneId": "x"}, "no 'segIndices' key"),
        ({"segIndices": "abc"}, "must be a list, got str"),
        ({"segIndices": [1, 2.5]}, "flat list of integers"),
        ({"segIndices": [[1], [2]]}, "flat list of integers"),
    ]:
        path.write_text(json.dumps(content))
        with pytest.raises(InputError, match=problem):
            read_segs_json(path)
    path.write_text("[1,")
    with pytest.raises(InputError, match="not valid JSON"):
        read_segs_json(path)


# --- load_scan ---------------------------------------------------------------------------------------


def test_load_scan_ply_file_point_cloud_and_single_ply_folder(tmp_path):
    cloud = tmp_path / "room_vh_clean_2.ply"
    write_ply(cloud, np.eye(3))
    scene = load_scan(cloud)
    assert scan_name(cloud) == scan_name(tmp_path) == "room"
    assert scene.name == "room" and scene.faces.shape == (0, 3) and scene.colors is None and scene.gt is None
    (tmp_path / "gt.txt").write_text("1001\n0\n2002\n")
    assert load_scan(tmp_path, gt_path=tmp_path / "gt.txt").gt.tolist() == [1001, 0, 2002]
    (tmp_path / "gt.txt").write_text("1001\n")
    with pytest.raises(InputError, match="gt.txt: has 1 lines, expected 3"):
        load_scan(cloud, gt_path=tmp_path / "gt.txt")


def test_load_scan_errors(tmp_path):
    with pytest.raises(InputError, match="absent: no such file or folder"):
        load_scan(tmp_path / "absent")
    with pytest.raises(InputError, match="absent: no such file or folder"):
        scan_name(tmp_path / "absent")
    (tmp_path / "mesh.xyz").write_text("0 0 0\n")
    with pytest.raises(InputError, match="unsupported scan"):
        load_scan(tmp_path / "mesh.xyz")
    with pytest.raises(InputError, match="0 scan files"):
        load_scan(tmp_path)
    write_ply(tmp_path / "a.ply", np.eye(3))
    write_ply(tmp_path / "b.ply", np.eye(3))
    with pytest.raises(InputError, match="2 scan files"):
        load_scan(tmp_path)


def test_load_scan_folder_with_gt_override(tmp_path):
    folder = make_release_scene(tmp_path / "scene0007_00")
    (tmp_path / "gt.txt").write_text("\n".join(["3001"] * 6) + "\n")
    assert load_scan(folder, load_gt=True).gt.tolist() == EXPECTED_GT
    assert load_scan(folder).gt is None  # stages that do not use it never read it
    assert scan_name(folder) == "scene0007_00"
    assert load_scan(folder, gt_path=tmp_path / "gt.txt").gt.tolist() == [3001] * 6


# --- real data ---------------------------------------------------------------------------------------


def test_real_scene_unaligned(scene0000_dir):
    scene = load_scannet_scene(scene0000_dir)
    assert scene.name == "scene0000_00" and scene.source == scene0000_dir
    assert scene.vertices.shape == (81369, 3) and scene.faces.shape == (153587, 3)
    assert scene.colors.shape == (81369, 3) and scene.colors.dtype == np.uint8
    instances = np.unique(scene.gt[scene.gt > 0])
    assert len(instances) == 67
    assert sum(int(i) // 1000 in BENCHMARK_CLASSES for i in instances) == 27
    assert [f.name for f in scene.frames] == ["0", "11", "102"]
    intrinsic = np.loadtxt(scene0000_dir / "exported" / "intrinsic" / "intrinsic_color.txt")[:3, :3]
    for frame in scene.frames:
        assert np.array_equal(frame.pose, np.loadtxt(scene0000_dir / "exported" / "pose" / f"{frame.name}.txt"))
        assert np.array_equal(frame.intrinsic, intrinsic)
    assert scene.frames[1].color_image().shape == (968, 1296, 3)
    segs = read_segs_json(scene0000_dir / "scene0000_00_vh_clean_2.0.010000.segs.json", scene.num_vertices)
    assert len(np.unique(segs)) == 668


def test_real_scene_axis_aligned(scene0000_dir):
    plain = load_scannet_scene(scene0000_dir, load_gt=False)
    aligned = load_scannet_scene(scene0000_dir, axis_align=True, load_gt=False)
    alignment = read_axis_alignment(scene0000_dir / "scene0000_00.txt")
    assert np.array_equal(alignment, ALIGNMENT)
    homogeneous = np.column_stack([plain.vertices, np.ones(plain.num_vertices)])
    assert np.allclose(aligned.vertices, (homogeneous @ alignment.T)[:, :3], atol=1e-12)
    assert np.array_equal(aligned.faces, plain.faces) and aligned.gt is None
    for before, after in zip(plain.frames, aligned.frames):
        assert np.allclose(after.pose, alignment @ before.pose)
    # The aligned room sits on the floor: ScanNet's alignment moves the floor to about z = 0.
    assert abs(np.percentile(aligned.vertices[:, 2], 1)) < 0.1


def test_real_scene_through_load_scan(scene0000_dir):
    scene = load_scan(scene0000_dir, load_frames=False, load_gt=True)
    assert scene.frames == [] and scene.gt is not None and scene.num_vertices == 81369
    mesh_only = load_scan(scene0000_dir / "scene0000_00_vh_clean_2.ply", axis_align=True)
    assert mesh_only.name == "scene0000_00" and mesh_only.gt is None and mesh_only.frames == []
    aligned = load_scannet_scene(scene0000_dir, axis_align=True, load_frames=False, load_gt=False)
    assert np.array_equal(mesh_only.vertices, aligned.vertices)


def test_axis_alignment_turns_normals_with_the_vertices(tmp_path):
    # A PLY with normals and a meta file rotating 90 degrees about z and shifting by (1, 2, 3).
    (tmp_path / "room.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\nend_header\n1 0 0 1 0 0\n0 0 0 1 0 0\n"
    )
    (tmp_path / "room.txt").write_text("axisAlignment = 0 -1 0 1 1 0 0 2 0 0 1 3 0 0 0 1\n")
    scene = load_scan(tmp_path / "room.ply", axis_align=True)
    np.testing.assert_allclose(scene.vertices, [[1.0, 3.0, 3.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(scene.normals, [[0.0, 1.0, 0.0]] * 2, atol=1e-7)
