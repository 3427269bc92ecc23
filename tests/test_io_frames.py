from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from unscene3d.errors import InputError
from unscene3d.io.frames import read_exported_frames, read_intrinsic, read_matrix
from unscene3d.io.images import read_color_image, read_depth_image

INTRINSIC = np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]])


def write_matrix(path, matrix):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" ".join(f"{v:f}" for v in row) for row in matrix) + "\n")


def pose(tx):
    matrix = np.eye(4)
    matrix[:3, 3] = [tx, 2.0, 3.0]
    return matrix


def make_export(folder, numbers=(0, 2, 10), depth=False):
    """A tiny SensReader export: 4x3 colour images whose red channel is the frame number."""
    (folder / "color").mkdir(parents=True)
    intrinsic = np.eye(4)
    intrinsic[:3, :3] = INTRINSIC
    write_matrix(folder / "intrinsic" / "intrinsic_color.txt", intrinsic)
    for n in numbers:
        Image.fromarray(np.full((3, 4, 3), n, np.uint8)).save(folder / "color" / f"{n}.png")
        write_matrix(folder / "pose" / f"{n}.txt", pose(float(n)))
        if depth:
            (folder / "depth").mkdir(exist_ok=True)
            Image.fromarray(np.full((3, 4), 1000 + n, np.uint16)).save(folder / "depth" / f"{n}.png")
    return folder


def test_frames_sorted_by_number_with_poses_and_intrinsics(tmp_path):
    folder = make_export(tmp_path / "exported")
    (folder / "color" / "notes.txt").write_text("ignored")
    frames = read_exported_frames(folder)
    assert [f.name for f in frames] == ["0", "2", "10"]  # numeric, not alphabetical, order
    for frame, n in zip(frames, (0, 2, 10)):
        assert np.array_equal(frame.pose, pose(float(n)))
        assert np.array_equal(frame.intrinsic, INTRINSIC)
        assert frame.color is None and frame.depth_path is None and frame.depth_intrinsic is None
        assert frame.color_image().shape == (3, 4, 3) and frame.color_image()[0, 0, 0] == n
        assert frame.depth_image() is None


def test_depth_frames_and_depth_intrinsics(tmp_path):
    folder = make_export(tmp_path / "exported", numbers=(5,), depth=True)
    write_matrix(folder / "intrinsic" / "intrinsic_depth.txt", np.diag([300.0, 300.0, 1.0]))
    (frame,) = read_exported_frames(folder)
    assert np.array_equal(frame.depth_intrinsic, np.diag([300.0, 300.0, 1.0]))
    depth = frame.depth_image()
    assert depth.dtype == np.float32 and depth.shape == (3, 4)
    assert np.allclose(depth, 1.005)


def test_missing_pose_names_frame_and_pose_file(tmp_path):
    folder = make_export(tmp_path / "exported")
    (folder / "pose" / "2.txt").unlink()
    with pytest.raises(InputError) as info:
        read_exported_frames(folder)
    assert "colour frame 2.png has no pose file" in str(info.value)
    assert info.value.path == folder / "pose" / "2.txt"


def test_invalid_inf_pose_is_skipped_with_warning(tmp_path, caplog):
    folder = make_export(tmp_path / "exported")
    (folder / "pose" / "2.txt").write_text("\n".join(["-inf -inf -inf -inf"] * 4) + "\n")
    with caplog.at_level(logging.WARNING, logger="unscene3d.io.frames"):
        frames = read_exported_frames(folder)
    assert [f.name for f in frames] == ["0", "10"]
    assert "skipped 1 frame(s) with an invalid (non-finite) pose: 2" in caplog.text


def test_missing_intrinsics_or_color_folder(tmp_path):
    folder = make_export(tmp_path / "exported")
    (folder / "intrinsic" / "intrinsic_color.txt").unlink()
    with pytest.raises(InputError, match="intrinsic_color.txt: no such file"):
        read_exported_frames(folder)
    with pytest.raises(InputError, match="no 'color/' subfolder"):
        read_exported_frames(tmp_path / "nothing")


def test_read_matrix_errors(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("1 2 3\n4 5 6\n")
    assert read_matrix(path, (2, 3)).tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(InputError, match=r"m.txt: expected a 4x4 matrix \(16 numbers\), found 6 values"):
        read_matrix(path, (4, 4))
    path.write_text("1 2 x\n4 5 6\n")
    with pytest.raises(InputError, match="expected a 2x3 matrix of numbers, found 'x'"):
        read_matrix(path, (2, 3))
    path.write_text("1 2 nan\n4 5 6\n")
    with pytest.raises(InputError, match="NaN or infinite"):
        read_matrix(path, (2, 3))
    with pytest.raises(InputError, match="no such file"):
        read_matrix(tmp_path / "absent.txt", (2, 3))


def test_read_intrinsic_accepts_3x3_and_4x4(tmp_path):
    write_matrix(tmp_path / "a.txt", INTRINSIC)
    four = np.eye(4)
    four[:3, :3] = INTRINSIC
    write_matrix(tmp_path / "b.txt", four)
    assert np.array_equal(read_intrinsic(tmp_path / "a.txt"), INTRINSIC)
    assert np.array_equal(read_intrinsic(tmp_path / "b.txt"), INTRINSIC)


def test_depth_png_millimetres_to_metres(tmp_path):
    millimetres = np.array([[0, 1, 1500], [65535, 2500, 0]], dtype=np.uint16)
    Image.fromarray(millimetres).save(tmp_path / "d.png")
    depth = read_depth_image(tmp_path / "d.png")
    assert depth.dtype == np.float32
    assert np.allclose(depth, [[0, 0.001, 1.5], [65.535, 2.5, 0]])
    assert depth[0, 0] == 0 and depth[1, 2] == 0


def test_depth_rejects_8_bit_and_colour_reads_grey(tmp_path):
    Image.fromarray(np.full((2, 2), 7, np.uint8)).save(tmp_path / "g.png")
    with pytest.raises(InputError, match="16-bit"):
        read_depth_image(tmp_path / "g.png")
    colour = read_color_image(tmp_path / "g.png")
    assert colour.shape == (2, 2, 3) and colour.dtype == np.uint8 and np.all(colour == 7)


def test_unreadable_or_missing_image(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(InputError, match="bad.jpg: cannot read image"):
        read_color_image(tmp_path / "bad.jpg")
    with pytest.raises(InputError, match="no such image file"):
        read_color_image(tmp_path / "none.jpg")


def test_real_exported_frames(scene0000_dir):
    folder = scene0000_dir / "exported"
    frames = read_exported_frames(folder)
    assert [f.name for f in frames] == ["0", "11", "102"]
    intrinsic = np.loadtxt(folder / "intrinsic" / "intrinsic_color.txt")[:3, :3]
    for frame in frames:
        assert np.array_equal(frame.pose, np.loadtxt(folder / "pose" / f"{frame.name}.txt"))
        assert np.array_equal(frame.intrinsic, intrinsic)
        assert frame.depth_path is None
    image = frames[0].color_image()
    assert image.shape == (968, 1296, 3) and image.dtype == np.uint8
