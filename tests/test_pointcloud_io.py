"""Readers of every point-cloud and mesh format, on tiny files the tests write, and their bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.io.datasets import S3DIS_TO_NYU40, SCANNET20_TO_NYU40
from unscene3d.io.pointclouds import OBJECT_LABEL, mosd_ground_truth
from unscene3d.io.scan import expand_scan_paths, load_scan, scan_name

NAN = np.nan
# A 2 x 3 organized frame: row-major pixels, two of them without depth (NaN).
FRAME_XYZ = np.array(
    [[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [NAN, NAN, NAN], [0.0, 0.1, 1.0], [NAN, NAN, NAN], [0.1, 0.1, 1.2]]
)
FRAME_RGB = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 0], [0, 0, 255], [0, 0, 0], [10, 20, 30]], dtype=np.uint32)
FRAME_LABEL = np.array([3, 20, 0, 21, 0, 45], dtype=np.uint32)


def frame_fields(packed_as_float: bool) -> dict:
    packed = (FRAME_RGB[:, 0] << 16) | (FRAME_RGB[:, 1] << 8) | FRAME_RGB[:, 2]
    rgb = packed.astype(np.uint32).view(np.float32) if packed_as_float else packed.astype(np.uint32)
    xyz = FRAME_XYZ.astype(np.float32)
    return {"label": FRAME_LABEL, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "rgb" if packed_as_float else "rgba": rgb}


def test_mosd_label_rule():
    # 0 none, 1-9 the table (void), n >= 10 object n // 10, as NYU40 "otherfurniture" instances.
    assert mosd_ground_truth(np.array([0, 1, 9, 10, 20, 21, 35])).tolist() == [0, 0, 0, 39001, 39002, 39002, 39003]
    assert OBJECT_LABEL == 39


@pytest.mark.parametrize("encoding", ["ascii", "binary", "binary_compressed"])
@pytest.mark.parametrize("packed_as_float", [True, False])
def test_organized_pcd_every_encoding(tmp_path, pcd_writer, encoding, packed_as_float):
    path = pcd_writer(tmp_path / "frame.pcd", frame_fields(packed_as_float), encoding=encoding, height=2)
    scene = load_scan(path)
    keep = [0, 1, 3, 5]
    assert scene.name == "frame" and scene.num_vertices == 4 and scene.input_size == 6
    assert scene.input_index.tolist() == keep
    # Camera coordinates (y down) turned z up: (x, y, z) -> (x, z, -y); the sensor stays at the origin.
    expected = FRAME_XYZ[keep][:, [0, 2, 1]] * [1, 1, -1]
    np.testing.assert_allclose(scene.vertices, expected, atol=1e-6)
    np.testing.assert_array_equal(scene.sensor, [0, 0, 0])
    np.testing.assert_array_equal(scene.colors, FRAME_RGB[keep])
    assert scene.gt.tolist() == [0, 39002, 39002, 39004]
    assert scene.to_input(scene.gt, 0).tolist() == [0, 39002, 0, 39002, 0, 39004]
    assert scene.to_input(np.ones((1, 4), bool), False).tolist() == [[True, True, False, True, False, True]]


def test_unorganized_pcd_is_z_up_with_no_sensor_and_up_can_be_given(tmp_path, pcd_writer):
    xyz = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]], dtype=np.float32)
    path = pcd_writer(tmp_path / "cloud.pcd", {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}, encoding="binary")
    scene = load_scan(path)
    assert scene.sensor is None and scene.input_index is None and scene.colors is None and scene.gt is None
    np.testing.assert_allclose(scene.vertices, xyz)
    turned = load_scan(path, up="y", scale=0.5)  # y up: (x, y, z) -> (x, -z, y), then halved
    np.testing.assert_allclose(turned.vertices, 0.5 * xyz[:, [0, 2, 1]] * [1, -1, 1])


def test_pcd_extra_fields_are_ignored_and_viewpoint_gives_the_sensor(tmp_path, pcd_writer):
    xyz = np.eye(3, dtype=np.float32)
    fields = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "intensity": np.ones(3, np.float32),
              "pad1": np.zeros(3, np.uint8), "pad2": np.zeros(3, np.uint8)}
    path = pcd_writer(tmp_path / "c.pcd", fields, viewpoint="1 2 3 1 0 0 0", encoding="binary")
    # PCL names padding fields "_", several per point type.
    path.write_bytes(path.read_bytes().replace(b"FIELDS x y z intensity pad1 pad2", b"FIELDS x y z intensity _ _"))
    scene = load_scan(path)
    np.testing.assert_allclose(scene.vertices, xyz)
    np.testing.assert_array_equal(scene.sensor, [1, 2, 3])


def pcd_error(path, *fragments, scan=None):
    with pytest.raises(InputError) as info:
        load_scan(path if scan is None else scan)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("encoding", ["ascii", "binary", "binary_compressed"])
def test_truncated_pcd_bodies(tmp_path, pcd_writer, encoding):
    path = pcd_writer(tmp_path / "cut.pcd", frame_fields(True), encoding=encoding, height=2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # past the last row's start
    pcd_error(path, "truncated" if encoding != "ascii" else "rows")


def test_bad_pcd_headers(tmp_path, pcd_writer):
    xyz = np.eye(3, dtype=np.float32)
    path = pcd_writer(tmp_path / "h.pcd", {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})
    good = path.read_text()
    path.write_text(good.replace("TYPE F F F", "TYPE F F Q"))
    pcd_error(path, "unknown type Q4")
    path.write_text(good.replace("FIELDS x y z", "FIELDS x y w"))
    pcd_error(path, "no z field", "x y w")
    path.write_text(good.replace("SIZE 4 4 4", "SIZE 4 4"))
    pcd_error(path, "3 FIELDS but 2 SIZE")
    path.write_text(good.replace("POINTS 3", "POINTS 4"))
    pcd_error(path, "says 4 points but WIDTH x HEIGHT is 3 x 1")
    path.write_text(good.replace("DATA ascii", "DATA binary_scrambled"))
    pcd_error(path, "encoding 'binary_scrambled'")
    path.write_text(good.split("DATA")[0])
    pcd_error(path, "no DATA line")
    path.write_text(good.replace("0.0 1.0 0.0", "0.0 one 0.0"))
    pcd_error(path, "not 3 numbers")


@pytest.mark.parametrize(
    "xyz, problem",
    [
        ([[1.0, 2.0, 3.0]], "at least 2 points, this one has 1"),
        ([[1.0, 2.0, 3.0]] * 5, "all 5 points are at the same position"),
        ([[NAN, NAN, NAN]] * 4, "none of the 4 points has coordinates"),
        ([[NAN, NAN, NAN], [1.0, 1.0, 1.0]], "at least 2 points, this one has 1"),
    ],
)
def test_degenerate_clouds(tmp_path, pcd_writer, xyz, problem):
    xyz = np.array(xyz, dtype=np.float32)
    pcd_error(pcd_writer(tmp_path / "d.pcd", {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}), problem)


# --- numpy arrays, LAS/LAZ, trimesh formats ---------------------------------------------------------------


def test_npy_and_npz(tmp_path):
    xyz = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float64)
    np.save(tmp_path / "a.npy", xyz)
    np.save(tmp_path / "b.npy", np.hstack([xyz, [[1.0, 0, 0], [0, 0.5, 0], [0, 0, 0]]]))  # colours in 0..1
    np.savez(tmp_path / "c.npz", coord=xyz, color=np.array([[255, 0, 0]] * 3, np.uint8), normal=np.eye(3))
    np.savez(tmp_path / "d.npz", xyz)
    a, b, c, d = (load_scan(tmp_path / name) for name in ("a.npy", "b.npy", "c.npz", "d.npz"))
    for scene in (a, b, c, d):
        np.testing.assert_allclose(scene.vertices, xyz)
        assert scene.faces.shape == (0, 3)
    assert a.colors is None and b.colors.tolist() == [[255, 0, 0], [0, 128, 0], [0, 0, 0]]
    assert c.colors.tolist() == [[255, 0, 0]] * 3 and c.normals.tolist() == np.eye(3).tolist()
    np.save(tmp_path / "bad.npy", np.zeros((4, 4)))
    pcd_error(tmp_path / "bad.npy", "(N, 3) or (N, 6)", "(4, 4)")
    np.savez(tmp_path / "bad.npz", a=xyz, b=xyz)
    pcd_error(tmp_path / "bad.npz", "no point array", "a, b")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    pcd_error(tmp_path / "junk.npy", "not a readable numpy file")


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_and_laz(tmp_path, suffix):
    import laspy

    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = np.array([0.001] * 3)
    header.offsets = np.array([100.0, 200.0, 0.0])
    las = laspy.LasData(header)
    las.x, las.y, las.z = [100.0, 101.5, 100.25], [200.0, 200.0, 202.0], [0.0, 1.0, 2.5]
    las.red, las.green, las.blue = [65535, 0, 256], [0, 65535, 512], [0, 0, 768]  # 16-bit colour
    path = tmp_path / f"scan{suffix}"
    las.write(path)
    scene = load_scan(path)
    np.testing.assert_allclose(scene.vertices, [[100, 200, 0], [101.5, 200, 1], [100.25, 202, 2.5]])
    assert scene.colors.tolist() == [[255, 0, 0], [0, 255, 0], [1, 2, 3]]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # the last points' bytes are missing
    pcd_error(path, "truncated")  # LAS: by its size, before reading; LAZ: where the data breaks off
    path.write_bytes(data[:150])  # not even the whole header
    pcd_error(path, "not a readable LAS/LAZ file")


def test_obj_off_and_glb(tmp_path):
    (tmp_path / "m.obj").write_text(
        "v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 0 1 0 0 0 1\nv 0 0 1 1 1 1\nf 1 2 3\nf 1 3 4\nf 4 3 2\n"
    )
    mesh = load_scan(tmp_path / "m.obj")
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3], [3, 2, 1]]
    assert mesh.colors.tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]
    (tmp_path / "p.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    cloud = load_scan(tmp_path / "p.obj")
    assert cloud.faces.shape == (0, 3) and cloud.num_vertices == 3
    (tmp_path / "q.off").write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    assert load_scan(tmp_path / "q.off").faces.tolist() == [[0, 1, 2], [2, 3, 0]]

    import trimesh

    box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    box.export(tmp_path / "box.glb")
    glb = load_scan(tmp_path / "box.glb")  # glTF is y up: its y extent (2) becomes z
    np.testing.assert_allclose(np.ptp(glb.vertices, axis=0), [1.0, 3.0, 2.0])
    (tmp_path / "bad.glb").write_bytes(b"glTF\x02\x00\x00\x00garbage")
    pcd_error(tmp_path / "bad.glb", "not a readable GLB file")
    (tmp_path / "empty.obj").write_text("# nothing\n")
    pcd_error(tmp_path / "empty.obj", "no geometry")


# --- dataset folders ----------------------------------------------------------------------------------


def test_pointcept_folder(tmp_path):
    folder = tmp_path / "scene0001_00"
    folder.mkdir()
    coord = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32)
    np.save(folder / "coord.npy", coord)
    np.save(folder / "color.npy", np.full((4, 3), 200, dtype=np.uint8))
    np.save(folder / "normal.npy", np.tile([0, 0, 1.0], (4, 1)).astype(np.float32))
    np.save(folder / "segment20.npy", np.array([0, 4, 4, -1]))  # wall, chair, chair, ignored
    np.save(folder / "instance.npy", np.array([-1, 0, 1, 2]))
    scene = load_scan(folder)
    assert scan_name(folder) == scene.name == "scene0001_00"
    np.testing.assert_allclose(scene.vertices, coord)
    assert scene.colors[0].tolist() == [200] * 3 and scene.normals[0].tolist() == [0, 0, 1]
    chair = SCANNET20_TO_NYU40[4]
    assert chair == 5 and scene.gt.tolist() == [0, chair * 1000 + 1, chair * 1000 + 2, 0]
    np.save(folder / "segment20.npy", np.array([0, 4, 4, 25]))
    pcd_error(folder / "segment20.npy", "-1..19", scan=folder)


def write_s3dis_room(area) -> object:
    room = area / "office_1"
    (room / "Annotations").mkdir(parents=True)
    rows = {
        "chair_1": [[0.0, 0.0, 0.5, 10, 10, 10], [0.1, 0.0, 0.5, 10, 10, 10]],
        "chair_2": [[2.0, 0.0, 0.5, 20, 20, 20]],
        "wall_1": [[0.0, 3.0, 1.0, 30, 30, 30], [1.0, 3.0, 1.0, 30, 30, 30]],
        "clutter_1": [[1.0, 1.0, 0.8, 40, 40, 40]],
    }
    lines = []
    for name, points in rows.items():
        text = "".join(" ".join(f"{v:.3f}" if i < 3 else str(int(v)) for i, v in enumerate(p)) + "\n" for p in points)
        (room / "Annotations" / f"{name}.txt").write_text(text)
        lines.append(text)
    (room / "office_1.txt").write_text("".join(reversed(lines)) + "5.000 5.000 0.000 0 0 0\n")
    return room


def test_s3dis_room_folder(tmp_path):
    room = write_s3dis_room(tmp_path / "Area_5")
    scene = load_scan(room)
    assert scan_name(room) == scene.name == "Area_5_office_1"
    assert scene.num_vertices == 7 and scene.colors[0].tolist() == [40, 40, 40]
    # Room order: clutter, wall x2, chair_2, chair_1 x2, then a point in no annotation.
    assert scene.gt.tolist() == [39001, 1001, 1001, 5002, 5001, 5001, 0]
    assert S3DIS_TO_NYU40["wall"] == 1 and S3DIS_TO_NYU40["clutter"] == OBJECT_LABEL
    assert expand_scan_paths([tmp_path / "Area_5"]) == [room]


def test_expand_scan_paths_lists_every_format(tmp_path):
    np.save(tmp_path / "a.npy", np.eye(3))
    (tmp_path / "b.obj").write_text("v 0 0 0\nv 1 0 0\n")
    (tmp_path / "notes.txt").write_text("not a scan\n")
    (tmp_path / "c").mkdir()
    np.save(tmp_path / "c" / "coord.npy", np.eye(3))
    assert [p.name for p in expand_scan_paths([tmp_path])] == ["a.npy", "b.obj", "c"]
    assert [scan_name(p) for p in expand_scan_paths([tmp_path])] == ["a", "b", "c"]
