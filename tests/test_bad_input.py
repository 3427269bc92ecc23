"""The bad-input corpus: every command against malformed files, folders, checkpoints and options.

Each case writes its inputs into a fresh folder and runs the command in-process (typer's CliRunner).
A rejected input must exit 2 with exactly one line, ``error: <culprit>: <problem>``, naming the file (or
option) at fault, print no traceback and leave nothing behind in the folder. An accepted edge case must
exit 0 with the right result, checked against the library run on clean input.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.evaluation import evaluate_scenes
from unscene3d.instances import Instances
from unscene3d.io.benchmark import export_predictions, read_predictions, write_gt_txt
from unscene3d.io.ply import write_ply
from unscene3d.io.segments import read_segs_json
from unscene3d.model.backbone import BackboneConfig, build_backbone
from unscene3d.model.checkpoint import save_checkpoint
from unscene3d.oversegment import oversegment
from unscene3d.pseudo.pipeline import PseudoMasks, write_pseudo_masks
from unscene3d.synthetic import make_synthetic_scene

runner = CliRunner()
_WARNINGS_PYTHON_HIDES = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)

TINY_BACKBONE = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1,) * 8, init_dim=8, stem_kernel=3)


# ------------------------------------------------------------------------------------------------ inputs


def grid_mesh(n: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small folded sheet (two planes meeting at a crease) with colours: vertices, faces, colours."""
    u, v = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    vertices = np.stack([u.ravel(), v.ravel(), np.maximum(u.ravel() - 0.5, 0)], axis=1)
    index = np.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    colors = np.where(vertices[:, :1] > 0.5, [200, 40, 40], [40, 40, 200]).astype(np.uint8)
    return vertices, faces, colors


def ascii_ply(
    vertices: np.ndarray,
    faces: np.ndarray | list,
    colors: np.ndarray | None = None,
    *,
    coord: str = "float",
    color_type: str = "uchar",
    normals: np.ndarray | None = None,
    vertex_count: int | None = None,
    newline: str = "\n",
    extra: str = "",
) -> bytes:
    """An ASCII PLY written by hand, so that any value (NaN, 1.5, 300) can be put in any field."""
    header = ["ply", "format ascii 1.0", f"element vertex {len(vertices) if vertex_count is None else vertex_count}"]
    header += [f"property {coord} {axis}" for axis in "xyz"]
    if normals is not None:
        header += [f"property float {axis}" for axis in ("nx", "ny", "nz")]
    if colors is not None:
        header += [f"property {color_type} {name}" for name in ("red", "green", "blue")]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    rows = []
    for i, vertex in enumerate(vertices):
        values = [repr(float(x)) for x in vertex]
        if normals is not None:
            values += [repr(float(x)) for x in normals[i]]
        if colors is not None:
            values += [str(c) for c in np.asarray(colors[i]).tolist()]
        rows.append(" ".join(values))
    rows += [" ".join(map(str, [len(face), *face])) for face in (np.asarray(f).tolist() for f in faces)]
    return (newline.join(header + rows) + newline + extra).encode()


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def good_mesh(folder: Path, name: str = "mesh") -> Path:
    return write(folder / f"{name}.ply", ascii_ply(*grid_mesh()))


def mutated(folder: Path, old: str, new: str, *, name: str = "mesh") -> Path:
    text = ascii_ply(*grid_mesh()).decode()
    assert old in text
    return write(folder / f"{name}.ply", text.replace(old, new, 1))


@dataclass(frozen=True)
class Shared:
    """Inputs built once: a room, its ground truth and predictions, checkpoints, pseudo masks."""

    room: Path  # a binary PLY of a small synthetic room
    gt_dir: Path  # gt/room.txt
    pred_dir: Path  # felzenszwalb predictions of the room
    backbone_run: Path  # a pretraining run folder with a checkpoint
    pseudo_dir: Path  # room.npz
    selftrain_run: Path  # a self-training run (segment model, a few steps) on the pseudo masks


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    from unscene3d.baselines import felzenszwalb_instances
    from unscene3d.train.selftrain import preset_config, self_train

    folder = tmp_path_factory.mktemp("shared")
    scene = make_synthetic_scene(0, vertex_spacing=0.15)
    scene.name = "room"
    room = folder / "room.ply"
    write_ply(room, scene.vertices, scene.faces, scene.colors)
    write_gt_txt(folder / "gt" / "room.txt", scene.gt)
    found = felzenszwalb_instances(scene, k_thresh=0.05, min_verts=100)
    export_predictions(folder / "pred", "room", found.masks, found.scores)
    model = build_backbone(TINY_BACKBONE, seed=0)
    save_checkpoint(folder / "backbone", 1, model.state_dict(), {}, {"backbone": TINY_BACKBONE.to_dict()})
    segmentation = oversegment(scene.vertices, scene.faces, scene.colors, variant="unscene3d")
    everything = Instances(np.ones((1, segmentation.num_segments), bool), [1.0])
    write_pseudo_masks(folder / "pseudo", PseudoMasks("room", segmentation.labels, everything, {}, room))
    self_train(folder / "pseudo", [], folder / "run", preset_config("segment", steps=3, batch_size=1))
    return Shared(room, folder / "gt", folder / "pred", folder / "backbone", folder / "pseudo", folder / "run")


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


# ------------------------------------------------------------------------------------------------- cases

Build = Callable[[Path, Shared], list]


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    blame: str | None  # text the one error line must hold (the culprit); None for an accepted input
    check: Callable[[Path, Shared, object], None] | None = None


CASES: list[Case] = []


def rejects(blame: str) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        CASES.append(Case(build.__name__, build, blame))
        return build

    return register


def accepts(check: Callable[[Path, Shared, object], None]) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        CASES.append(Case(build.__name__, build, None, check))
        return build

    return register


def overseg(mesh: Path, tmp: Path, *options: str) -> list:
    return ["oversegment", mesh, "-o", tmp / "out.segs.json", *options]


# --- PLY files (the oversegment command reads them like every other command)


@rejects("absent.ply")
def ply_missing(tmp, shared):
    return overseg(tmp / "absent.ply", tmp)


@rejects("mesh.ply: not a PLY file")
def ply_empty_file(tmp, shared):
    return overseg(write(tmp / "mesh.ply", b""), tmp)


@rejects("mesh.ply: not a PLY file")
def ply_text_file(tmp, shared):
    return overseg(write(tmp / "mesh.ply", "hello\n"), tmp)


# Edits of the good ASCII mesh's text: (case, text, replacement, what the error line must hold).
HEADER_AND_DATA_EDITS = [
    ("ply_no_end_header", "end_header\n", "", "mesh.ply: malformed PLY header"),
    ("ply_unknown_format", "format ascii", "format binary_middle_endian", "mesh.ply: malformed PLY header"),
    ("ply_unknown_type", "property float z", "property float128 z", "mesh.ply: malformed PLY header"),
    ("ply_repeated_property", "property float z", "property float y", "mesh.ply: malformed PLY header"),
    ("ply_without_z", "property float z\n", "", "mesh.ply: 'vertex' element has no z"),
    ("ply_without_vertices", "element vertex", "element point", "mesh.ply: PLY header declares no 'vertex' element"),
    ("ply_face_without_indices", "vertex_indices", "corners", "mesh.ply: 'face' element has no 'vertex_indices'"),
    ("ply_word_in_data", "\n3 ", "\n3 x", "mesh.ply: ASCII PLY data holds a value that is not a number"),
    ("ply_negative_list_count", "\n3 ", "\n-3 ", "mesh.ply: element 'face' record 0: bad list count"),
]
for name, old, new, blame in HEADER_AND_DATA_EDITS:
    CASES.append(Case(name, lambda tmp, shared, old=old, new=new: overseg(mutated(tmp, old, new), tmp), blame))

# One value of the grid mesh changed: (case, array, index, value, coordinate type, what the error line must hold).
VALUE_EDITS = [
    ("ply_nan_coordinate", "vertices", (5, 1), np.nan, "float",
     "mesh.ply: 1 of 64 vertices have NaN or infinite coordinates"),
    # Finite as text, infinite as the declared float.
    ("ply_float32_overflow", "vertices", (5, 1), 1e39, "float",
     "mesh.ply: 1 of 64 vertices have NaN or infinite coordinates"),
    # Finite in float32, but its squares are not (the normals of its faces).
    ("ply_coordinate_squares_overflow", "vertices", (5, 1), 1e30, "double", "mesh.ply: |y| reaches 1e+30"),
    ("ply_face_index_out_of_range", "faces", (3, 1), 64, "float", "mesh.ply: face vertex index 64 is out of range"),
    ("ply_negative_face_index", "faces", (3, 1), -1, "float", "mesh.ply: face vertex index -1 is out of range"),
    ("ply_fractional_face_index", "faces", (3, 1), 1.5, "float",
     "mesh.ply: element 'face' record 3: 'vertex_indices' value 1.5 is not a whole number"),
    # A uchar cannot hold 300: the file is wrong, not merely bright.
    ("ply_uchar_colour_300", "colors", (2, 0), 300, "float",
     "mesh.ply: element 'vertex' record 2: 'red' value 300 is not a whole number in 0..255"),
]


def grid_with(tmp: Path, field: str, index: tuple[int, int], value: float, coord: str) -> Path:
    arrays = dict(zip(("vertices", "faces", "colors"), grid_mesh()))
    arrays[field] = arrays[field].astype(float if isinstance(value, float) else np.int64)
    arrays[field][index] = value
    return write(tmp / "mesh.ply", ascii_ply(arrays["vertices"], arrays["faces"], arrays["colors"], coord=coord))


for name, *edit, blame in VALUE_EDITS:
    CASES.append(Case(name, lambda tmp, shared, edit=tuple(edit): overseg(grid_with(tmp, *edit), tmp), blame))


@rejects("mesh.ply: the data has 42 lines but the header declares 162 records (64 vertex, 98 face): the file is "
         "truncated")
def ply_truncated_ascii(tmp, shared):
    text = ascii_ply(*grid_mesh())
    return overseg(write(tmp / "mesh.ply", text[: len(text) // 2]), tmp)


@rejects("room.ply: truncated PLY data")
def ply_truncated_binary(tmp, shared):
    data = shared.room.read_bytes()
    return overseg(write(tmp / "room.ply", data[: len(data) // 2]), tmp)


@rejects("mesh.ply: the data has 162 lines but the header declares 161 records")
def ply_fewer_vertices_declared(tmp, shared):
    vertices, faces, colors = grid_mesh()
    return overseg(write(tmp / "mesh.ply", ascii_ply(vertices, faces, colors, vertex_count=len(vertices) - 1)), tmp)


@rejects("room.ply")
def ply_binary_fewer_vertices_declared(tmp, shared):
    data = shared.room.read_bytes()
    header_end = data.index(b"end_header")
    count = int(data[:header_end].split(b"element vertex ")[1].split(b"\n")[0])
    header = data[:header_end].replace(f"element vertex {count}".encode(), f"element vertex {count - 2}".encode())
    return overseg(write(tmp / "room.ply", header + data[header_end:]), tmp)


@rejects("mesh.ply: the data has 162 lines but the header declares 167 records")
def ply_more_vertices_declared(tmp, shared):
    vertices, faces, colors = grid_mesh()
    return overseg(write(tmp / "mesh.ply", ascii_ply(vertices, faces, colors, vertex_count=len(vertices) + 5)), tmp)


@rejects("mesh.ply: |x| reaches 1e+39")
def ply_double_beyond_float32(tmp, shared):
    vertices, faces, colors = grid_mesh()
    vertices[5, 0] = 1e39  # finite in float64, infinite in the float32 arithmetic of every stage
    return ["baseline", "hdbscan", write(tmp / "mesh.ply", ascii_ply(vertices, faces, colors, coord="double")),
            "-o", tmp / "out"]


@rejects("mesh.ply: |z| reaches 1e+18")
def ply_huge_coordinate_for_pseudo_masks(tmp, shared):
    vertices, faces, colors = grid_mesh()
    vertices[5, 2] = -1e18  # voxel indices at 2 cm would overflow 64 bits
    return ["pseudo-masks", write(tmp / "mesh.ply", ascii_ply(vertices, faces, colors, coord="double")),
            "-o", tmp / "out"]


@rejects("far.ply: the scan spans 5e+04 x 5e+04 x 5e+04")
def ply_beyond_the_voxel_grid_of_the_network(tmp, shared):
    vertices, _, colors = grid_mesh()
    vertices[-1] = 5e4  # within the coordinate limit, but a 2 cm grid from here to there cannot be indexed
    cloud = write(tmp / "far.ply", ascii_ply(vertices, [], colors, coord="double"))
    return ["features3d", shared.backbone_run, cloud, "-o", tmp / "out", "--device", "cpu"]


@rejects("mesh.ply: face vertex index 8.5 is not a whole number")
def ply_binary_fractional_face_index(tmp, shared):
    vertices, faces, _ = grid_mesh()
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {len(vertices)}\nproperty double x\nproperty double y\nproperty double z\n"
              f"element face {len(faces)}\nproperty list uchar float vertex_indices\nend_header\n").encode()
    faces = faces.astype(np.float32)
    faces[0, 1] += 0.5
    body = vertices.astype("<f8").tobytes() + b"".join(struct.pack("<B3f", 3, *f) for f in faces)
    return overseg(write(tmp / "mesh.ply", header + body), tmp)


@rejects("mesh.ply: the scan has no vertices")
def ply_no_vertices(tmp, shared):
    return overseg(write(tmp / "mesh.ply", ascii_ply(np.zeros((0, 3)), [])), tmp)


# --- point clouds: the room's PLY without its faces goes through every command


def room_cloud(tmp: Path, shared: Shared) -> Path:
    from unscene3d.io.ply import read_ply

    mesh = read_ply(shared.room)
    path = tmp / "cloud.ply"
    write_ply(path, mesh.vertices, colors=mesh.colors)
    return path


def cloud_scene(tmp: Path):
    from unscene3d.io.scan import load_scan

    return load_scan(tmp / "cloud.ply")


def segments_of_the_cloud(tmp, shared, result):
    from unscene3d.oversegment_points import oversegment_scene

    expected = oversegment_scene(cloud_scene(tmp))
    assert expected.num_segments > 1 and np.array_equal(read_segs_json(tmp / "out.segs.json"), expected.seg_ids)
    assert (tmp / "out.segs.ply").is_file()


@accepts(segments_of_the_cloud)
def ply_point_cloud_for_oversegment(tmp, shared):
    return overseg(room_cloud(tmp, shared), tmp)


def instances_of_the_cloud(tmp, shared, result):
    from unscene3d.baselines import felzenszwalb_instances

    scene = cloud_scene(tmp)
    found = felzenszwalb_instances(scene)
    written, _, written_scores = read_predictions(tmp / "out", "cloud", scene.num_vertices)
    assert len(found) > 0 and np.array_equal(written, found.masks) and np.allclose(written_scores, found.scores)


@accepts(instances_of_the_cloud)
def ply_point_cloud_for_felzenszwalb(tmp, shared):
    return ["baseline", "felzenszwalb", room_cloud(tmp, shared), "-o", tmp / "out"]


def pseudo_masks_of_the_cloud(tmp, shared, result):
    from unscene3d.pseudo.pipeline import PseudoMaskOptions, pseudo_masks_for_scene, read_pseudo_masks

    expected = pseudo_masks_for_scene(cloud_scene(tmp), PseudoMaskOptions())
    written = read_pseudo_masks(tmp / "out" / "cloud.npz")
    assert len(expected.instances) > 0 and np.array_equal(written.segment_labels, expected.segment_labels)
    assert np.array_equal(written.instances.masks, expected.instances.masks)


@accepts(pseudo_masks_of_the_cloud)
def ply_point_cloud_for_pseudo_masks(tmp, shared):
    return ["pseudo-masks", room_cloud(tmp, shared), "-o", tmp / "out"]


def predictions_of_the_cloud(tmp, shared, result):
    from unscene3d.predict import predict_scans

    predict_scans(shared.selftrain_run, [tmp / "cloud.ply"], tmp / "expected")
    for name in ("cloud.txt", "cloud_instances.txt"):
        assert (tmp / "out" / name).read_text() == (tmp / "expected" / name).read_text()
    assert len((tmp / "out" / "cloud_instances.txt").read_text().splitlines()) == cloud_scene(tmp).num_vertices


@accepts(predictions_of_the_cloud)
def ply_point_cloud_for_predict(tmp, shared):
    return ["predict", shared.selftrain_run, room_cloud(tmp, shared), "-o", tmp / "out"]


# --- PCD files (PCL's format; read by io/pointclouds.py)


def pcd_file(path: Path, points: np.ndarray, *, encoding: str = "ascii", **header: str | None) -> Path:
    """A PCL .pcd of float32 x y z written by hand; ``header`` replaces lines (``FIELDS="a b c"``; None drops one)."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    lines = {"VERSION": "0.7", "FIELDS": "x y z", "SIZE": "4 4 4", "TYPE": "F F F", "COUNT": "1 1 1",
             "WIDTH": str(len(points)), "HEIGHT": "1", "VIEWPOINT": "0 0 0 1 0 0 0", "POINTS": str(len(points)),
             "DATA": encoding, **header}
    text = "".join(f"{key} {value}\n" for key, value in lines.items() if value is not None)
    if encoding == "binary":
        body = points.astype("<f4").tobytes()
    else:
        body = "".join(" ".join(repr(float(v)) for v in point) + "\n" for point in points).encode()
    return write(path, text.encode() + body)


def grid_pcd(tmp: Path, **header: str | None) -> Path:
    return pcd_file(tmp / "cloud.pcd", grid_mesh()[0], **header)


# A PCD of the grid's points with a header line replaced: (case, header edits, what the error line must hold).
PCD_HEADER_EDITS = [
    ("pcd_unknown_fields", {"FIELDS": "a b c"}, "cloud.pcd: PCD has no x/y/z field (fields: a b c)"),
    ("pcd_unknown_field_type", {"TYPE": "F Q F"}, "cloud.pcd: PCD field 'y' has an unknown type Q4"),
    ("pcd_header_without_data", {"DATA": None}, "cloud.pcd: malformed PCD header: no DATA line"),
    ("pcd_header_width_word", {"WIDTH": "wide"}, "cloud.pcd: malformed PCD header: a size, count, width"),
    ("pcd_header_points_disagree", {"POINTS": "10"}, "cloud.pcd: PCD header says 10 points but WIDTH x HEIGHT"),
    ("pcd_header_viewpoint_words", {"VIEWPOINT": "here 0 0 1 0 0 0"},
     "cloud.pcd: malformed PCD header: VIEWPOINT here 0 0 1 0 0 0 does not start with a position"),
    ("pcd_header_unknown_encoding", {"DATA": "lzw"}, "cloud.pcd: PCD data encoding 'lzw' is not one of"),
]
for name, edits, blame in PCD_HEADER_EDITS:
    CASES.append(Case(name, lambda tmp, shared, edits=edits: overseg(grid_pcd(tmp, **edits), tmp), blame))


@rejects("cloud.pcd: PCD body holds 500 bytes, 64 points need 768 (truncated?)")
def pcd_truncated_binary(tmp, shared):
    path = pcd_file(tmp / "cloud.pcd", grid_mesh()[0], encoding="binary")
    path.write_bytes(path.read_bytes()[:-268])
    return ["baseline", "hdbscan", path, "-o", tmp / "out"]


@rejects("cloud.pcd: PCD body has 32 rows, the header promises 64 (truncated?)")
def pcd_truncated_ascii(tmp, shared):
    lines = grid_pcd(tmp).read_text().splitlines(keepends=True)
    return overseg(write(tmp / "cloud.pcd", "".join(lines[: lines.index("DATA ascii\n") + 33])), tmp)


@rejects("cloud.pcd: none of the 64 points has coordinates (all NaN or infinite)")
def pcd_only_nan_points(tmp, shared):
    return ["pseudo-masks", pcd_file(tmp / "cloud.pcd", np.full((64, 3), np.nan)), "-o", tmp / "out"]


@rejects("cloud.pcd: a point cloud needs at least 2 points, this one has 1")
def pcd_single_point(tmp, shared):
    return overseg(pcd_file(tmp / "cloud.pcd", [[1.0, 2.0, 3.0]]), tmp)


@rejects("cloud.pcd: all 64 points are at the same position")
def pcd_all_points_equal(tmp, shared):
    return ["baseline", "felzenszwalb", pcd_file(tmp / "cloud.pcd", np.ones((64, 3))), "-o", tmp / "out"]


@rejects("cloud.pcd: the scan has no vertices")
def pcd_no_points(tmp, shared):
    return overseg(pcd_file(tmp / "cloud.pcd", np.zeros((0, 3))), tmp)


def segments_of_the_points_with_depth(tmp, shared, result):
    from unscene3d.oversegment_points import oversegment_points

    points = grid_mesh()[0]
    expected = oversegment_points(points).seg_ids * 2  # each point's own row is twice its index
    written = read_segs_json(tmp / "out.segs.json")
    assert np.array_equal(written[::2], expected) and (written[1::2] == -1).all()


@accepts(segments_of_the_points_with_depth)
def pcd_organized_frame_with_missing_depth(tmp, shared):
    rows = np.full((128, 3), np.nan)
    rows[::2] = grid_mesh()[0]  # every other pixel without depth: no segment (-1), the rest as a cloud
    return overseg(pcd_file(tmp / "cloud.pcd", rows, WIDTH="64", HEIGHT="2"), tmp, "--up", "z")


@rejects("bare.ply: has no vertex colours")
def ply_colourless_for_colour_variant(tmp, shared):
    vertices, faces, _ = grid_mesh()
    return overseg(write(tmp / "bare.ply", ascii_ply(vertices, faces)), tmp, "--variant", "unscene3d")


@rejects("mesh.docx: unsupported scan")
def scan_unsupported_suffix(tmp, shared):
    return ["baseline", "felzenszwalb", write(tmp / "mesh.docx", "x"), "-o", tmp / "out"]


@rejects("scans: no scans found")
def scan_folder_without_scans(tmp, shared):
    write(tmp / "scans" / "notes.txt", "x")
    return ["pseudo-masks", tmp / "scans", "-o", tmp / "out"]


@rejects("my room.ply: scene name 'my room' holds a space")
def scan_name_with_space(tmp, shared):
    return ["baseline", "felzenszwalb", good_mesh(tmp, "my room"), "-o", tmp / "out"]


@rejects(".room.ply: scene name '.room' starts with a dot")
def scan_name_with_leading_dot(tmp, shared):
    return ["pseudo-masks", good_mesh(tmp, ".room"), "-o", tmp / "out"]


@rejects("room\\xff.ply: scene name is not valid UTF-8")
def scan_name_not_utf8(tmp, shared):
    return ["predict", shared.backbone_run, good_mesh(tmp, os.fsdecode(b"room\xff")), "-o", tmp / "out"]


@rejects("scene name is 240 bytes long")
def scan_name_too_long(tmp, shared):
    return ["predict", shared.backbone_run, good_mesh(tmp, "L" * 240), "-o", tmp / "out"]


def one_listing(tmp, shared, result):
    assert sorted(p.name for p in (tmp / "out").glob("*.txt")) == ["mesh.txt"]


@accepts(one_listing)
def scan_named_twice(tmp, shared):
    mesh = good_mesh(tmp / "in")
    return ["baseline", "hdbscan", tmp / "in", mesh, "-o", tmp / "out"]


def two_segment_files(tmp, shared, result):
    assert sorted(p.name for p in (tmp / "out").iterdir()) == [
        f"scene000{i}_00_vh_clean_2.0.010000.segs.{kind}" for i in (1, 2) for kind in ("json", "ply")]


@accepts(two_segment_files)
def scan_folders_linking_to_one_mesh(tmp, shared):
    mesh = good_mesh(tmp / "data")
    for name in ("scene0001_00", "scene0002_00"):
        (tmp / "scans" / name).mkdir(parents=True)
        os.symlink(mesh, tmp / "scans" / name / f"{name}_vh_clean_2.ply")
    return ["oversegment", tmp / "scans", "-o", tmp / "out"]


@rejects("b/room.ply: has the scene name 'room' of")
def scan_names_collide(tmp, shared):
    return ["baseline", "hdbscan", good_mesh(tmp / "a", "room"), good_mesh(tmp / "b", "room"), "-o", tmp / "out"]


@rejects("b/room.ply: would write")
def oversegment_outputs_collide(tmp, shared):
    return ["oversegment", good_mesh(tmp / "a", "room"), good_mesh(tmp / "b", "room"), "-o", tmp / "out"]


# --- ScanNet scene folders


def scannet_folder(tmp: Path, shared: Shared, name: str = "scene0001_00") -> Path:
    folder = tmp / name
    folder.mkdir(parents=True)
    shutil.copy(shared.room, folder / f"{name}_vh_clean_2.ply")
    return folder


def with_frames(folder: Path, count: int = 2) -> Path:
    from PIL import Image

    export = folder / "exported"
    for i in range(count):
        write(export / "pose" / f"{i}.txt", "1 0 0 0\n0 1 0 0\n0 0 1 1.5\n0 0 0 1\n")
        (export / "color").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 6), (i * 40, 80, 120)).save(export / "color" / f"{i}.jpg")
    write(export / "intrinsic" / "intrinsic_color.txt", "5 0 4 0\n0 5 3 0\n0 0 1 0\n0 0 0 1\n")
    return folder


def copy_to(image: Path, target: Path, image_format: str) -> None:
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    Image.open(image).save(target, image_format)


def frames_2d(folder: Path, tmp: Path) -> list:
    return ["pseudo-masks", folder, "-o", tmp / "out", "--modality", "2d", "--encoder", "facebook/dino-vits8"]


# A scene's meta file with a bad axisAlignment, used by `baseline --axis-align`: (case, value, error).
ALIGNMENTS = [
    ("scannet_short_alignment", " ".join(["1"] * 15), "scene0001_00.txt: axisAlignment has 15 numbers"),
    ("scannet_alignment_words", "identity", "scene0001_00.txt: axisAlignment is not a list of numbers"),
    ("scannet_alignment_nan", " ".join(["nan"] * 16), "scene0001_00.txt: axisAlignment has NaN"),
]


def aligned_baseline(tmp: Path, shared: Shared, alignment: str) -> list:
    folder = scannet_folder(tmp, shared)
    write(folder / "scene0001_00.txt", f"axisAlignment = {alignment}\n")
    return ["baseline", "felzenszwalb", folder, "-o", tmp / "out", "--axis-align"]


for name, alignment, blame in ALIGNMENTS:
    CASES.append(Case(name, lambda tmp, shared, alignment=alignment: aligned_baseline(tmp, shared, alignment), blame))


@rejects("scene0001_00_vh_clean_2.ply: truncated PLY data")
def scannet_corrupt_mesh(tmp, shared):
    folder = scannet_folder(tmp, shared)
    mesh = folder / "scene0001_00_vh_clean_2.ply"
    mesh.write_bytes(mesh.read_bytes()[:-500])
    return ["baseline", "felzenszwalb", folder, "-o", tmp / "out"]


# A frame file of the scan's SensReader export removed (None) or replaced, for the 2d modality, which
# checks every frame before any work: (case, file under exported/, new content, error).
FRAME_EDITS = [
    ("scannet_frame_without_pose", "pose/1.txt", None, "pose/1.txt: colour frame 1.jpg has no pose file"),
    ("scannet_pose_words", "pose/0.txt", "1 0 0 0\n0 1 0 0\n0 0 1 x\n0 0 0 1\n",
     "pose/0.txt: expected a 4x4 matrix of numbers"),
    ("scannet_missing_intrinsics", "intrinsic/intrinsic_color.txt", None, "intrinsic_color.txt: no such file"),
    ("scannet_zero_focal_length", "intrinsic/intrinsic_color.txt", "0 0 4 0\n0 0 3 0\n0 0 1 0\n0 0 0 1\n",
     "intrinsic_color.txt: focal lengths must be positive"),
    ("scannet_corrupt_image", "color/1.jpg", "\xff\xd8 not a jpeg", "color/1.jpg: cannot read image"),
    ("scannet_colour_image_as_depth", "depth/0.png", None, "depth/0.png: expected a 16-bit single-channel depth"),
]


def frames_edited(tmp: Path, shared: Shared, relative: str, content: str | None) -> list:
    folder = with_frames(scannet_folder(tmp, shared))
    path = folder / "exported" / relative
    if relative.startswith("depth/"):
        copy_to(folder / "exported" / "color" / "0.jpg", path, "PNG")  # an 8-bit RGB image as depth
    elif content is None:
        path.unlink()
    else:
        write(path, content.encode("latin-1"))
    return frames_2d(folder, tmp)


for name, relative, content, blame in FRAME_EDITS:
    CASES.append(Case(name, lambda tmp, shared, edit=(relative, content): frames_edited(tmp, shared, *edit), blame))


@rejects("scene0001_00: has no posed colour frames")
def scannet_2d_without_frames(tmp, shared):
    return frames_2d(scannet_folder(tmp, shared), tmp)


def same_segments_as_the_mesh(tmp, shared, result):
    expected = oversegment(*_room_geometry(shared))
    assert np.array_equal(read_segs_json(tmp / "out.segs.json"), expected.seg_ids)


def _room_geometry(shared: Shared):
    from unscene3d.io.ply import read_ply

    mesh = read_ply(shared.room)
    return mesh.vertices, mesh.faces, mesh.colors


@accepts(same_segments_as_the_mesh)
def scannet_malformed_gt_is_not_read_by_oversegment(tmp, shared):
    folder = scannet_folder(tmp, shared)
    write(folder / "instance_gt" / "scene0001_00.txt", "not ground truth\n")
    write(folder / "scene0001_00.aggregation.json", "{")
    return overseg(folder, tmp)


def same_instances_as_the_mesh(tmp, shared, result):
    from unscene3d.baselines import felzenszwalb_instances
    from unscene3d.scene import Scene

    vertices, faces, colors = _room_geometry(shared)
    found = felzenszwalb_instances(Scene("room", vertices, faces, colors))
    written, _, written_scores = read_predictions(tmp / "out", "scene0001_00", len(vertices))
    assert np.array_equal(written, found.masks) and np.allclose(written_scores, found.scores)


@accepts(same_instances_as_the_mesh)
def scannet_malformed_gt_is_not_read_by_baseline(tmp, shared):
    folder = scannet_folder(tmp, shared)
    write(folder / "instance_gt" / "scene0001_00.txt", "-5\n")
    return ["baseline", "felzenszwalb", folder, "-o", tmp / "out"]


def the_folders_own_ground_truth(tmp, shared, result):
    assert (tmp / "out" / "scene0001_00.txt").read_text() == (shared.gt_dir / "room.txt").read_text()


@accepts(the_folders_own_ground_truth)
def scannet_gt_for_export_gt(tmp, shared):
    folder = scannet_folder(tmp, shared)
    write(folder / "instance_gt" / "scene0001_00.txt", (shared.gt_dir / "room.txt").read_text())
    return ["export-gt", folder, "-o", tmp / "out"]


@rejects("instance_gt/scene0001_00.txt: line 1 is not an integer")
def scannet_malformed_gt_for_export_gt(tmp, shared):
    folder = scannet_folder(tmp, shared)
    write(folder / "instance_gt" / "scene0001_00.txt", "not ground truth\n")
    return ["export-gt", folder, "-o", tmp / "out"]


# --- ground truth (evaluate)


def gt_copy(tmp: Path, shared: Shared, text: str | None = None) -> Path:
    gt_dir = copy_tree(shared.gt_dir, tmp / "gt")
    if text is not None:
        (gt_dir / "room.txt").write_text(text)
    return gt_dir


def evaluate(shared: Shared, gt_dir: Path, *options) -> list:
    return ["evaluate", shared.pred_dir, "--gt", gt_dir, *options]


def gt_lines(shared: Shared) -> list[str]:
    return (shared.gt_dir / "room.txt").read_text().splitlines()


@rejects("nope: ground-truth folder not found")
def gt_folder_missing(tmp, shared):
    return evaluate(shared, tmp / "nope")


@rejects("gt/room.txt: no ground truth for scene room")
def gt_file_missing(tmp, shared):
    write(tmp / "gt" / "other.txt", "0\n")
    return evaluate(shared, tmp / "gt")


# One line of the ground truth replaced: (case, line index, new line, error).
GT_LINE_EDITS = [
    ("gt_word", 2, "chair", "gt/room.txt: line 3 is not an integer"),
    ("gt_huge_integer", 3, "99999999999999999999999", "gt/room.txt: line 4: integer '99999999999999999999999' is out"),
    ("gt_negative", 3, "-3001", "gt/room.txt: has a negative id"),
]


def gt_line_edited(tmp: Path, shared: Shared, index: int, line: str) -> list:
    lines = gt_lines(shared)
    lines[index] = line
    return evaluate(shared, gt_copy(tmp, shared, "\n".join(lines) + "\n"))


for name, index, line, blame in GT_LINE_EDITS:
    CASES.append(Case(name, lambda tmp, shared, edit=(index, line): gt_line_edited(tmp, shared, *edit), blame))


@rejects("gt/room.txt: has ")
def gt_short(tmp, shared):
    return evaluate(shared, gt_copy(tmp, shared, "\n".join(gt_lines(shared)[:-7]) + "\n"))


@rejects("gt/room.txt: has 0 lines")
def gt_empty(tmp, shared):
    return evaluate(shared, gt_copy(tmp, shared, ""))


@rejects("gt: ground-truth folder not found")
def gt_folder_is_a_file(tmp, shared):
    return evaluate(shared, write(tmp / "gt", "x"))


def figures_of(output: str) -> list[str]:
    return next(line for line in output.splitlines() if line.startswith("class-agnostic")).split()[1:]


def unpredicted_scene_counts_as_missed(tmp, shared, result):
    gt = np.array(gt_lines(shared), dtype=np.int64)
    masks, _, scores = read_predictions(shared.pred_dir, "room", len(gt))
    expected = evaluate_scenes([("room", Instances(masks, scores), gt), ("room2", Instances.empty(len(gt)), gt)])
    assert json.loads((tmp / "eval.json").read_text()) == json.loads(json.dumps(expected.to_json()))


@accepts(unpredicted_scene_counts_as_missed)
def gt_scene_without_predictions(tmp, shared):
    gt_dir = gt_copy(tmp, shared)
    shutil.copy(gt_dir / "room.txt", gt_dir / "room2.txt")
    return evaluate(shared, gt_dir, "--json", tmp / "eval.json")


def only_the_predicted_scene(tmp, shared, result):
    gt = np.array(gt_lines(shared), dtype=np.int64)
    masks, _, scores = read_predictions(shared.pred_dir, "room", len(gt))
    expected = evaluate_scenes([("room", Instances(masks, scores), gt)])
    assert json.loads((tmp / "eval.json").read_text()) == json.loads(json.dumps(expected.to_json()))


@accepts(only_the_predicted_scene)
def gt_scene_without_predictions_predicted_only(tmp, shared):
    gt_dir = gt_copy(tmp, shared)
    shutil.copy(gt_dir / "room.txt", gt_dir / "room2.txt")
    return evaluate(shared, gt_dir, "--json", tmp / "eval.json", "--predicted-only")


@accepts(only_the_predicted_scene)
def gt_with_crlf_lines(tmp, shared):
    return evaluate(shared, gt_copy(tmp, shared, "\r\n".join(gt_lines(shared)) + "\r\n"), "--json", tmp / "eval.json")


# --- predictions (evaluate)


def pred_copy(tmp: Path, shared: Shared, listing: str | None = None) -> Path:
    pred_dir = copy_tree(shared.pred_dir, tmp / "pred")
    if listing is not None:
        (pred_dir / "room.txt").write_text(listing)
    return pred_dir


def listing_lines(shared: Shared) -> list[str]:
    return (shared.pred_dir / "room.txt").read_text().splitlines()


def evaluate_pred(pred_dir: Path, shared: Shared, *options) -> list:
    return ["evaluate", pred_dir, "--gt", shared.gt_dir, *options]


@rejects("nope: prediction folder not found")
def pred_folder_missing(tmp, shared):
    return evaluate_pred(tmp / "nope", shared)


@rejects("pred: no prediction files")
def pred_folder_empty(tmp, shared):
    (tmp / "pred").mkdir()
    return evaluate_pred(tmp / "pred", shared)


@rejects("pred/room.txt: line 1: expected '<mask path> <label id> <score>'")
def pred_listing_two_fields(tmp, shared):
    lines = listing_lines(shared)
    lines[0] = " ".join(lines[0].split()[:2])
    return evaluate_pred(pred_copy(tmp, shared, "\n".join(lines) + "\n"), shared)


@rejects("pred/room.txt: line 2: score 'nan' is not finite")
def pred_score_nan(tmp, shared):
    lines = listing_lines(shared)
    lines[1] = lines[1].rsplit(" ", 1)[0] + " nan"
    return evaluate_pred(pred_copy(tmp, shared, "\n".join(lines) + "\n"), shared)


@rejects("pred/room.txt: line 1: label id '1' or score 'high' is not a number")
def pred_score_word(tmp, shared):
    lines = listing_lines(shared)
    lines[0] = lines[0].rsplit(" ", 1)[0] + " high"
    return evaluate_pred(pred_copy(tmp, shared, "\n".join(lines) + "\n"), shared)


@rejects("pred/room.txt: line 1: label id 'inf' or score")
def pred_label_infinite(tmp, shared):
    lines = listing_lines(shared)
    mask, _, score = lines[0].split()
    lines[0] = f"{mask} inf {score}"
    return evaluate_pred(pred_copy(tmp, shared, "\n".join(lines) + "\n"), shared)


@rejects("pred/room.txt: line 1: mask path '/etc/passwd' must be relative")
def pred_absolute_mask_path(tmp, shared):
    return evaluate_pred(pred_copy(tmp, shared, "/etc/passwd 1 0.5\n"), shared)


@rejects("pred/room.txt: line 1: mask path '../gt/room.txt' points outside")
def pred_mask_outside(tmp, shared):
    return evaluate_pred(pred_copy(tmp, shared, "../gt/room.txt 1 0.5\n"), shared)


@rejects("pred_mask/room_0.txt: mask file not found")
def pred_mask_missing(tmp, shared):
    pred_dir = pred_copy(tmp, shared)
    (pred_dir / "pred_mask" / "room_0.txt").unlink()
    return evaluate_pred(pred_dir, shared)


def pred_with_mask(tmp: Path, shared: Shared, index: int, edit: Callable[[str], str]) -> Path:
    pred_dir = pred_copy(tmp, shared)
    mask = pred_dir / "pred_mask" / f"room_{index}.txt"
    mask.write_text(edit(mask.read_text()))
    return pred_dir


@rejects("pred_mask/room_1.txt: line 1 is not an integer")
def pred_mask_word(tmp, shared):
    return evaluate_pred(pred_with_mask(tmp, shared, 1, lambda text: "yes" + text[1:]), shared)


@rejects("pred_mask/room_0.txt: line 1: integer '99999999999999999999999' is out of range")
def pred_mask_huge_integer(tmp, shared):
    return evaluate_pred(pred_with_mask(tmp, shared, 0, lambda text: "99999999999999999999999" + text[1:]), shared)


@rejects("pred_mask/room_1.txt: has ")
def pred_masks_disagree(tmp, shared):
    return evaluate_pred(pred_with_mask(tmp, shared, 1, lambda text: text[:-10]), shared)


@rejects("pred/room.txt: lists mask")
def pred_mask_listed_twice(tmp, shared):
    lines = listing_lines(shared)
    return evaluate_pred(pred_copy(tmp, shared, "\n".join([lines[0], lines[0]]) + "\n"), shared)


def zero_figures(tmp, shared, result):
    assert figures_of(result.output) == ["0.0", "0.0", "0.0"]


@accepts(zero_figures)
def pred_empty_listing(tmp, shared):
    return evaluate_pred(pred_copy(tmp, shared, ""), shared)


def same_as_the_original_predictions(tmp, shared, result):
    original = runner.invoke(app, ["evaluate", str(shared.pred_dir), "--gt", str(shared.gt_dir)])
    assert figures_of(result.output) == figures_of(original.output)


@accepts(same_as_the_original_predictions)
def pred_mask_values_other_than_one(tmp, shared):
    pred_dir = pred_copy(tmp, shared)
    for mask in (pred_dir / "pred_mask").iterdir():  # the benchmark reads any non-zero value as "in the mask"
        mask.write_text(mask.read_text().replace("1\n", "7\n"))
    return evaluate_pred(pred_dir, shared)


# --- checkpoints (features3d, pseudo-masks 3d, predict)


def features3d(checkpoint: Path, tmp: Path, shared: Shared) -> list:
    return ["features3d", checkpoint, shared.room, "-o", tmp / "out", "--device", "cpu"]


def checkpoint_folder(tmp: Path, shared: Shared) -> Path:
    return copy_tree(shared.backbone_run / "checkpoint", tmp / "ckpt")


@rejects("nope: checkpoint not found")
def checkpoint_missing(tmp, shared):
    return features3d(tmp / "nope", tmp, shared)


@rejects("weights.bin: not a checkpoint")
def checkpoint_is_some_file(tmp, shared):
    return features3d(write(tmp / "weights.bin", b"\0" * 8), tmp, shared)


@rejects("empty: not a checkpoint: no state.json")
def checkpoint_empty_folder(tmp, shared):
    (tmp / "empty").mkdir()
    return features3d(tmp / "empty", tmp, shared)


@rejects("ckpt/state.json: unreadable checkpoint state")
def checkpoint_state_not_json(tmp, shared):
    folder = checkpoint_folder(tmp, shared)
    (folder / "state.json").write_text("{step: 1")
    return features3d(folder, tmp, shared)


@rejects("ckpt/state.json: not a unscene3d-backbone-checkpoint state file")
def checkpoint_state_of_something_else(tmp, shared):
    folder = checkpoint_folder(tmp, shared)
    (folder / "state.json").write_text(json.dumps({"format": "keras", "step": 1}))
    return features3d(folder, tmp, shared)


@rejects("ckpt/model.safetensors: checkpoint file missing")
def checkpoint_weights_missing(tmp, shared):
    folder = checkpoint_folder(tmp, shared)
    (folder / "model.safetensors").unlink()
    return features3d(folder, tmp, shared)


@rejects("ckpt/model.safetensors: unreadable safetensors file")
def checkpoint_weights_truncated(tmp, shared):
    folder = checkpoint_folder(tmp, shared)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return features3d(folder, tmp, shared)


def backbone_setting_changed(tmp: Path, shared: Shared, key: str, value: object) -> list:
    folder = checkpoint_folder(tmp, shared)
    state = json.loads((folder / "state.json").read_text())
    state["backbone"][key] = value
    (folder / "state.json").write_text(json.dumps(state))
    return features3d(folder, tmp, shared)


@rejects("ckpt: checkpoint weights do not match the model configuration")
def checkpoint_of_another_configuration(tmp, shared):
    return backbone_setting_changed(tmp, shared, "planes", [16] * 8)


@rejects("ckpt: bad backbone config in checkpoint")
def checkpoint_with_a_bad_config(tmp, shared):
    return backbone_setting_changed(tmp, shared, "norm", "group")


@rejects("ckpt/model.safetensors: unreadable safetensors file")
def checkpoint_truncated_for_pseudo_masks(tmp, shared):
    folder = checkpoint_folder(tmp, shared)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return ["pseudo-masks", shared.room, "-o", tmp / "out", "--modality", "3d", "--checkpoint", folder]


@rejects("not a self-training (Mask3D) checkpoint")
def checkpoint_backbone_for_predict(tmp, shared):
    return ["predict", shared.backbone_run, shared.room, "-o", tmp / "out"]


@rejects("run: not a self-training run")
def checkpoint_run_without_rounds(tmp, shared):
    (tmp / "run").mkdir()
    return ["predict", tmp / "run", shared.room, "-o", tmp / "out"]


# --- features3d folders (pseudo-masks --features3d reads what the features3d command wrote)


def features_folder(tmp: Path, shared: Shared, rows: int | None = None, channels: int = 12) -> Path:
    """A features3d folder for the room, written without the network (zeros of the right shape by default)."""
    from unscene3d.features.folder import write_manifest
    from unscene3d.io.scan import load_scan

    folder = tmp / "feat"
    write_manifest(folder, shared.backbone_run, 12)
    rows = load_scan(shared.room, load_frames=False).num_vertices if rows is None else rows
    np.save(folder / "room.npy", np.zeros((rows, channels), np.float32))
    return folder


def pseudo_masks_reading(folder: Path, tmp: Path, shared: Shared, *options: str) -> list:
    return ["pseudo-masks", shared.room, "-o", tmp / "out", "--features3d", folder, *options]


@rejects("nope: no such folder of 3D features")
def features_folder_missing(tmp, shared):
    return pseudo_masks_reading(tmp / "nope", tmp, shared)


@rejects("feat: has no features3d.json: not a folder written by `unscene3d features3d`")
def features_folder_without_its_description(tmp, shared):
    folder = features_folder(tmp, shared)
    (folder / "features3d.json").unlink()
    return pseudo_masks_reading(folder, tmp, shared)


@rejects("feat/features3d.json: describes format 'unscene3d features3d' version 2")
def features_folder_of_another_version(tmp, shared):
    folder = features_folder(tmp, shared)
    manifest = json.loads((folder / "features3d.json").read_text())
    (folder / "features3d.json").write_text(json.dumps({**manifest, "format_version": 2}))
    return pseudo_masks_reading(folder, tmp, shared)


@rejects("feat/room.npy: holds float32 features of shape (10, 12), but scan room needs (")
def features_of_another_scan(tmp, shared):
    return pseudo_masks_reading(features_folder(tmp, shared, rows=10), tmp, shared)


@rejects("feat/room.npy: holds float32 features of shape (")
def features_of_another_width(tmp, shared):
    return pseudo_masks_reading(features_folder(tmp, shared, channels=5), tmp, shared)


@rejects("feat/room.npy: not a .npy file of features")
def features_file_truncated(tmp, shared):
    folder = features_folder(tmp, shared)
    (folder / "room.npy").write_bytes((folder / "room.npy").read_bytes()[:100])
    return pseudo_masks_reading(folder, tmp, shared)


@rejects("feat/room.npy: not found: no 3D features for scan room")
def features_missing_for_a_scan(tmp, shared):
    folder = features_folder(tmp, shared)
    (folder / "room.npy").unlink()
    return pseudo_masks_reading(folder, tmp, shared)


@rejects("a backbone checkpoint (--checkpoint) or from a features3d folder (--features3d), not both")
def features_and_a_checkpoint(tmp, shared):
    return pseudo_masks_reading(features_folder(tmp, shared), tmp, shared, "--checkpoint", str(shared.backbone_run))


# --- training inputs


@rejects("nope: no such pseudo-mask folder")
def train_pseudo_folder_missing(tmp, shared):
    return ["train", tmp / "nope", "-o", tmp / "run"]


@rejects("pseudo/room.npz: not a pseudo-mask file")
def train_pseudo_file_corrupt(tmp, shared):
    pseudo = copy_tree(shared.pseudo_dir, tmp / "pseudo")
    (pseudo / "room.npz").write_bytes((pseudo / "room.npz").read_bytes()[:200])
    return ["train", pseudo, "-o", tmp / "run"]


# Command lines with a bad option: (case, command line, what the error line must hold). {room}: a good scan,
# {out}: an output folder, {backbone}: a pretraining run, {pseudo}: pseudo masks.
OPTIONS = [
    ("option_tau_nan", "pseudo-masks {room} -o {out} --tau nan", "--tau must be a finite number, got nan"),
    ("option_tau_above_one", "pseudo-masks {room} -o {out} --tau 1.5", "--tau must be at most 1"),
    ("option_no_workers", "pseudo-masks {room} -o {out} --workers 0", "--workers must be at least 1"),
    ("option_frame_step_zero", "pseudo-masks {room} -o {out} --frame-step 0", "--frame-step must be at least 1"),
    ("option_unknown_modality", "pseudo-masks {room} -o {out} --modality 4d", "modality must be one of"),
    ("option_negative_kthresh", "oversegment {room} -o {out} --kthresh -0.5", "--kthresh must be at least 0"),
    ("option_infinite_kthresh", "baseline felzenszwalb {room} -o {out} --kthresh inf",
     "--kthresh must be a finite number, got inf"),
    ("option_negative_min_verts", "oversegment {room} -o {out} --min-verts -1", "--min-verts must be at least 0"),
    ("option_device_bogus", "predict {backbone} {room} -o {out} --device bogus", "--device 'bogus' is not a device"),
    ("option_device_unsupported", "features3d {backbone} {room} -o {out} --device tpu", "--device 'tpu'"),
    ("option_zero_learning_rate", "pretrain {room} -o {out} --lr 0", "--lr must be greater than 0"),
    ("option_no_steps", "pretrain {room} -o {out} --steps 0", "--steps must be at least 1"),
    ("option_huge_num_pairs", f"pretrain {{room}} -o {{out}} --num-pairs {2**40}", "--num-pairs must be at most"),
    ("option_unknown_preset", "pretrain {room} -o {out} --preset gpu-huge", "unknown preset 'gpu-huge'"),
    ("option_infinite_learning_rate", "train {pseudo} -o {out} --lr inf", "--lr must be a finite number, got inf"),
    ("option_no_rounds", "train {pseudo} -o {out} --rounds 0", "--rounds must be at least 1"),
    ("option_negative_seed", "synthetic -o {out} --seed -1", "--seed must be at least 0"),
    ("option_repeated_seed", "synthetic -o {out} --seed 1 --seed 1", "--seed: each seed names one room"),
    ("option_zero_scale", "oversegment {room} -o {out} --scale 0", "--scale must be greater than 0"),
    ("option_negative_voxel_size", "baseline felzenszwalb {room} -o {out} --voxel-size -0.02",
     "--voxel-size must be greater than 0"),
    ("option_min_cluster_size_one", "baseline hdbscan {room} -o {out} --min-cluster-size 1",
     "--min-cluster-size must be at least 2"),
    ("option_unknown_ncut", "pseudo-masks {room} -o {out} --ncut fast", "cut must be one of"),
    ("option_view_no_points", "view {room} -o {out} --max-points 0", "--max-points must be at least 1"),
    ("option_fit_no_rounds", "fit {room} -o {out} --rounds 0", "--rounds must be at least 1"),
    ("option_fit_unknown_masks", "fit {room} -o {out} --masks bogus", "--masks must be one of union, model"),
    ("option_fit_encoder_folder_missing", "fit {room} -o {out} --encoder /nonexistent/encoder",
     "/nonexistent/encoder: --encoder: no such folder"),
    ("option_pseudo_masks_encoder_not_an_id", "pseudo-masks {room} -o {out} --encoder a?b",
     "--encoder 'a?b' is neither a folder nor a hub id"),
    ("option_unknown_source", "pseudo-masks {room} -o {out} --source slic", "--source must be one of auto, model, ncut, felzenszwalb"),
    ("option_fit_unknown_source", "fit {room} -o {out} --source slic", "--source must be one of auto, model, ncut"),
    ("option_fit_missing_ranker", "fit {room} -o {out} --ranker {out}/none.safetensors", "no such ranker file"),
    ("option_fit_unknown_preset", "fit {room} -o {out} --preset gpu-huge", "unknown preset 'gpu-huge'"),
    ("option_fit_negative_ranker_rounds", "fit {room} -o {out} --ranker-rounds -1", "--ranker-rounds must be at least 0"),
    ("option_fit_ranker_rounds_with_the_cut", "fit {room} -o {out} --ranker-rounds 2 --source ncut",
     "drop --ranker-rounds or the cut's options"),
    ("option_shard_zero", "oversegment {room} -o {out} --shard 0/2", "--shard: expected I/N, shard I of N with 1 <= I <= N"),
    ("option_shard_beyond_count", "pseudo-masks {room} -o {out} --shard 3/2", "got '3/2'"),
    ("option_shard_not_a_fraction", "baseline felzenszwalb {room} -o {out} --shard x", "--shard: expected I/N"),
    ("option_shard_of_features3d", "features3d {backbone} {room} -o {out} --shard 1/0", "got '1/0'"),
    ("option_shard_of_predict", "predict {room} -o {out} --shard 1/2/3", "got '1/2/3'"),
    ("option_shard_of_fit", "fit {room} -o {out} --shard 2", "got '2'"),
]


def command_line(template: str, tmp: Path, shared: Shared) -> list[str]:
    values = dict(room=shared.room, out=tmp / "out", backbone=shared.backbone_run, pseudo=shared.pseudo_dir)
    return [word.format(**values) for word in template.split()]


for name, template, blame in OPTIONS:
    CASES.append(Case(name, lambda tmp, shared, template=template: command_line(template, tmp, shared), blame))


@rejects("plain.safetensors: the ranker has no view rankers")
def option_fit_ranker_rounds_without_view_rankers(tmp, shared):
    from unscene3d.proposals.ranker import load_ranker

    shipped = load_ranker()
    shipped.views = {}  # a ranker file made before the view rankers
    shipped.save(tmp / "plain.safetensors")
    return ["fit", shared.room, "-o", tmp / "out", "--ranker", tmp / "plain.safetensors"]


# --- output paths


@rejects("eval.json: is a folder")
def output_json_is_a_folder(tmp, shared):
    (tmp / "eval.json").mkdir()
    return evaluate(shared, shared.gt_dir, "--json", tmp / "eval.json")


@rejects("is a file, not a folder")
def output_json_under_a_file(tmp, shared):
    return evaluate(shared, shared.gt_dir, "--json", write(tmp / "results", "x") / "eval.json")


@rejects("out: exists and is not a folder")
def output_folder_is_a_file(tmp, shared):
    write(tmp / "out", "x")
    return ["baseline", "felzenszwalb", shared.room, "-o", tmp / "out"]


@rejects("out: exists and is not a folder")
def output_demo_folder_is_a_file(tmp, shared):
    write(tmp / "out", "x")
    return ["demo", "-o", tmp / "out"]


@rejects("out: exists and is not a folder")
def output_fit_folder_is_a_file(tmp, shared):
    write(tmp / "out", "x")
    return ["fit", shared.room, "-o", tmp / "out"]


@rejects("nope: ground-truth folder not found")
def output_fit_gt_folder_missing(tmp, shared):
    return ["fit", shared.room, "-o", tmp / "out", "--gt", tmp / "nope"]


@rejects("out: exists and is not a folder")
def output_export_gt_folder_is_a_file(tmp, shared):
    write(tmp / "out", "x")
    return ["export-gt", shared.room, "-o", tmp / "out"]


@rejects("page.html: is a folder")
def output_view_page_is_a_folder(tmp, shared):
    (tmp / "page.html").mkdir()
    return ["view", shared.room, "-o", tmp / "page.html"]


@rejects("report: exists and is not a folder")
def output_evaluate_report_is_a_file(tmp, shared):
    return evaluate(shared, shared.gt_dir, "--report", write(tmp / "report", "x"))


@rejects("mesh.ply: is also an input")
def output_overwrites_the_input(tmp, shared):
    mesh = good_mesh(tmp)
    return ["oversegment", mesh, "-o", mesh]


@rejects("out.segs.json: several scans need an output folder")
def output_file_for_several_meshes(tmp, shared):
    return overseg(good_mesh(tmp, "a"), tmp) + [good_mesh(tmp, "b")]


# --- accepted edge cases of files


def segments_of_the_grid(tmp, shared, result):
    assert np.array_equal(read_segs_json(tmp / "out.segs.json"), oversegment(*grid_mesh()[:2]).seg_ids)


@accepts(segments_of_the_grid)
def ply_crlf_lines_and_comments(tmp, shared):
    text = ascii_ply(*grid_mesh(), newline="\r\n").decode()
    text = text.replace("format ascii 1.0", "format ascii 1.0\r\ncomment made by hand \xe9\r\nobj_info grid")
    return overseg(write(tmp / "mesh.ply", text.encode("latin-1")), tmp)


@accepts(segments_of_the_grid)
def ply_double_coordinates(tmp, shared):
    return overseg(write(tmp / "mesh.ply", ascii_ply(*grid_mesh(), coord="double")), tmp)


def segments_of_the_fan_triangulation(tmp, shared, result):
    vertices, faces, _ = grid_mesh()
    half = len(faces) // 2
    fan = np.stack([faces[:half], faces[half:]], axis=1).reshape(-1, 3)  # (a,b,c), (a,c,d) per quad
    assert np.array_equal(read_segs_json(tmp / "out.segs.json"), oversegment(vertices, fan).seg_ids)


@accepts(segments_of_the_fan_triangulation)
def ply_quads(tmp, shared):
    vertices, faces, colors = grid_mesh()
    half = len(faces) // 2
    quads = np.concatenate([faces[:half], faces[half:, 2:]], axis=1)  # (a,b,c) and (a,c,d) -> (a,b,c,d)
    return overseg(write(tmp / "mesh.ply", ascii_ply(vertices, quads, colors)), tmp)


@accepts(segments_of_the_grid)
def ply_big_endian_binary(tmp, shared):
    vertices, faces, colors = grid_mesh()
    header = ("ply\nformat binary_big_endian 1.0\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n").encode()
    body = b"".join(struct.pack(">3f", *v) for v in vertices) + b"".join(struct.pack(">B3i", 3, *f) for f in faces)
    return overseg(write(tmp / "mesh.ply", header + body), tmp)


@accepts(segments_of_the_grid)
def ply_extra_element_after_faces(tmp, shared):
    text = ascii_ply(*grid_mesh()).decode()
    text = text.replace("end_header", "element material 1\nproperty uchar shininess\nend_header") + "7\n"
    return overseg(write(tmp / "mesh.ply", text), tmp)


def colours_clipped_with_a_warning(tmp, shared, result):
    vertices, faces, colors = grid_mesh()
    colors = colors.copy()
    colors[2] = [255, 0, 0]
    expected = oversegment(vertices, faces, colors, variant="unscene3d")
    assert np.array_equal(read_segs_json(tmp / "out.segs.json"), expected.seg_ids)


@accepts(colours_clipped_with_a_warning)
def ply_float_colours_out_of_range(tmp, shared):
    vertices, faces, colors = grid_mesh()
    colors = colors.astype(float)
    colors[2] = [300.0, -5.0, 0.0]
    return overseg(write(tmp / "mesh.ply", ascii_ply(vertices, faces, colors, color_type="float")), tmp,
                   "--variant", "unscene3d")


def hdbscan_without_the_file_normals(tmp, shared, result):
    from unscene3d.baselines import hdbscan_instances
    from unscene3d.scene import Scene

    vertices, faces, colors = _room_geometry(shared)
    found = hdbscan_instances(Scene("room", vertices, faces, colors))
    written, _, _ = read_predictions(tmp / "out", "room", len(vertices))
    assert len(found) > 0 and np.array_equal(written, found.masks)


@accepts(hdbscan_without_the_file_normals)
def ply_nan_normals(tmp, shared):
    vertices, faces, colors = _room_geometry(shared)
    normals = np.tile([0.0, 0.0, 1.0], (len(vertices), 1))
    normals[::7] = np.nan  # used as they are, these made every mask vanish
    return ["baseline", "hdbscan", write(tmp / "room.ply", ascii_ply(vertices, faces, colors, normals=normals)),
            "-o", tmp / "out"]


def no_instances(tmp, shared, result):
    assert (tmp / "out" / "tiny.txt").read_text() == ""


@accepts(no_instances)
def ply_three_vertices_for_hdbscan(tmp, shared):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    return ["baseline", "hdbscan", write(tmp / "tiny.ply", ascii_ply(vertices, [[0, 1, 2]])), "-o", tmp / "out"]


@rejects("tiny.ply: all 64 vertices are at the same position: the mesh has no shape")
def ply_all_vertices_at_one_point(tmp, shared):
    vertices, faces, colors = grid_mesh()
    return ["baseline", "hdbscan", write(tmp / "tiny.ply", ascii_ply(vertices * 0, faces, colors)), "-o", tmp / "out"]


def pseudo_masks_written(tmp, shared, result):
    from unscene3d.pseudo.pipeline import read_pseudo_masks

    assert len(read_pseudo_masks(tmp / "out" / "tiny.npz").instances) == 0


@accepts(pseudo_masks_written)
def ply_three_vertices_for_pseudo_masks(tmp, shared):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    return ["pseudo-masks", write(tmp / "tiny.ply", ascii_ply(vertices, [[0, 1, 2]], [[9, 9, 9]] * 3)),
            "-o", tmp / "out"]


def each_mesh_as_alone(tmp, shared, result):
    expected = oversegment(*grid_mesh()[:2]).seg_ids
    for name in ("a", "b"):
        assert np.array_equal(read_segs_json(tmp / "out" / f"{name}.0.010000.segs.json"), expected)


@accepts(each_mesh_as_alone)
def oversegment_several_meshes(tmp, shared):
    return ["oversegment", good_mesh(tmp / "in", "a"), good_mesh(tmp / "in", "b"), "-o", tmp / "out"]


def segments_in_the_folder(tmp, shared, result):
    assert np.array_equal(read_segs_json(tmp / "out" / "mesh.0.010000.segs.json"), oversegment(*grid_mesh()[:2]).seg_ids)


@accepts(segments_in_the_folder)
def oversegment_into_an_existing_folder(tmp, shared):
    (tmp / "out").mkdir()
    return ["oversegment", good_mesh(tmp / "in"), "-o", tmp / "out"]


# --- issue 18: files whose headers or contents lie, and degenerate geometry


def pcd_with(tmp: Path, header: dict[str, str], body: bytes) -> Path:
    text = "".join(f"{key} {value}\n" for key, value in header.items())
    return write(tmp / "cloud.pcd", text.encode() + body)


def pcd_header(points: int, encoding: str = "binary", **fields: str) -> dict[str, str]:
    return {"VERSION": "0.7", "FIELDS": "x y z", "SIZE": "4 4 4", "TYPE": "F F F", "COUNT": "1 1 1",
            "WIDTH": str(points), "HEIGHT": "1", "VIEWPOINT": "0 0 0 1 0 0 0", "POINTS": str(points),
            "DATA": encoding, **fields}


@rejects("cloud.pcd: PCD field 'x' has COUNT 2, but it holds one value per point")
def pcd_coordinate_with_count_two(tmp, shared):
    points = grid_mesh()[0].astype("<f4")
    body = np.concatenate([points, points[:, :1]], axis=1).tobytes()  # two x values per point
    return overseg(pcd_with(tmp, pcd_header(len(points), COUNT="2 1 1"), body), tmp)


@rejects("cloud.pcd: PCD field 'rgb' has COUNT 2, but it holds one value per point")
def pcd_colour_with_count_two(tmp, shared):
    points = grid_mesh()[0].astype("<f4")
    body = np.concatenate([points.view("<u4"), np.zeros((len(points), 2), "<u4")], axis=1).tobytes()
    header = pcd_header(len(points), FIELDS="x y z rgb", SIZE="4 4 4 4", TYPE="F F F U", COUNT="1 1 1 2")
    return ["export-gt", pcd_with(tmp, header, body), "-o", tmp / "out"]


def segments_ignoring_the_descriptor(tmp, shared, result):
    from unscene3d.oversegment_points import oversegment_points

    assert np.array_equal(read_segs_json(tmp / "out.segs.json"), oversegment_points(grid_mesh()[0]).seg_ids)


@accepts(segments_ignoring_the_descriptor)
def pcd_descriptor_with_count_three(tmp, shared):
    points = grid_mesh()[0].astype("<f4")  # a field the reader does not use may hold several values (PCL's fpfh)
    body = np.concatenate([points, np.ones((len(points), 3), "<f4")], axis=1).tobytes()
    header = pcd_header(len(points), FIELDS="x y z fpfh", SIZE="4 4 4 4", TYPE="F F F F", COUNT="1 1 1 3")
    return overseg(pcd_with(tmp, header, body), tmp, "--up", "z")


@rejects("cloud.pcd: PCD body holds 16 bytes per point, but the header's fields (x y z) take 12: the header lists "
         "fewer fields")
def pcd_binary_body_with_more_fields_than_the_header(tmp, shared):
    points = grid_mesh()[0].astype("<f4")
    body = np.concatenate([points, np.ones((len(points), 1), "<f4")], axis=1).tobytes()  # x y z intensity
    return overseg(pcd_with(tmp, pcd_header(len(points)), body), tmp)


@rejects("cloud.pcd: PCD body holds 7 bytes after the 64 points the header describes")
def pcd_binary_trailing_bytes(tmp, shared):
    points = grid_mesh()[0].astype("<f4")
    return overseg(pcd_with(tmp, pcd_header(len(points)), points.tobytes() + b"garbage"), tmp)


@rejects("cloud.pcd: PCD field 'y' row 6: 1e+39 does not fit its type float32")
def pcd_ascii_value_beyond_float32(tmp, shared):
    points = grid_mesh()[0].astype(np.float64)
    points[5, 1] = 1e39
    body = "".join(" ".join(repr(v) for v in row) + "\n" for row in points.tolist()).encode()
    return overseg(pcd_with(tmp, pcd_header(len(points), "ascii"), body), tmp)


@rejects("cloud.pcd: PCD field 'label' row 3: 300 is not a whole number in 0..255")
def pcd_ascii_label_beyond_its_type(tmp, shared):
    points = grid_mesh()[0]
    labels = np.zeros(len(points))
    labels[2] = 300
    rows = np.concatenate([points, labels[:, None]], axis=1)
    body = "".join(" ".join(repr(v) for v in row) + "\n" for row in rows.tolist()).encode()
    header = pcd_header(len(points), "ascii", FIELDS="x y z label", SIZE="4 4 4 1", TYPE="F F F U",
                        COUNT="1 1 1 1")
    return ["export-gt", pcd_with(tmp, header, body), "-o", tmp / "out"]


def npy_with_shape(path: Path, claimed: tuple[int, ...]) -> Path:
    """A small .npy whose header claims another shape (the data stays 64 x 3 float32)."""
    with open(path, "wb") as stream:
        np.lib.format.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False, "shape": claimed})
        stream.write(grid_mesh()[0].astype("<f4").tobytes())
    return path


@rejects("points.npy: the header declares a float32 array of shape (1000000000000, 3) (12,000,000,000,000 bytes), "
         "but the file holds 768 bytes of data")
def scan_npy_header_claims_a_trillion_points(tmp, shared):
    return ["pseudo-masks", npy_with_shape(tmp / "points.npy", (10**12, 3)), "-o", tmp / "out"]


@rejects("points.npy: the header declares a float32 array of shape (1000000000, 3)")
def scan_npy_header_claims_a_billion_points(tmp, shared):
    return overseg(npy_with_shape(tmp / "points.npy", (10**9, 3)), tmp)


@rejects("points.npy: holds complex numbers (complex128); coordinates and colours must be real")
def scan_npy_complex(tmp, shared):
    np.save(tmp / "points.npy", grid_mesh()[0] + 1j)
    return overseg(tmp / "points.npy", tmp)


@rejects("scene.npz: normals hold complex numbers (complex64); they must be real")
def scan_npz_complex_normals(tmp, shared):
    points = grid_mesh()[0]
    np.savez(tmp / "scene.npz", coord=points, normal=np.ones_like(points, dtype=np.complex64))
    return overseg(tmp / "scene.npz", tmp)


@rejects("points.npy: the array holds Python objects, not numbers")
def scan_npy_of_python_objects(tmp, shared):
    np.save(tmp / "points.npy", np.array([[1, 2, 3]] * 4, dtype=object), allow_pickle=True)
    return overseg(tmp / "points.npy", tmp)


def las_file(path: Path, *, compressed: bool = False) -> Path:
    import laspy

    points = grid_mesh()[0]
    las = laspy.create(point_format=2, file_version="1.2")
    las.x, las.y, las.z = points[:, 0], points[:, 1], points[:, 2]
    las.write(path, laz_backend=laspy.LazBackend.Lazrs if compressed else None)
    return path


def with_point_count(path: Path, count: int) -> Path:
    data = bytearray(path.read_bytes())
    data[107:111] = count.to_bytes(4, "little")  # LAS 1.2 "number of point records"
    path.write_bytes(bytes(data))
    return path


@rejects("cloud.las: the header declares 4,000,000,000 points (104,000,000,000 bytes), but the file holds 1,664 "
         "bytes of point data (64 points): truncated")
def scan_las_header_claims_four_billion_points(tmp, shared):
    return overseg(with_point_count(las_file(tmp / "cloud.las"), 4_000_000_000), tmp)


@rejects("cloud.las: the header declares 5,000 points, but the file ends after its header: the point data is missing")
def scan_las_header_only(tmp, shared):
    path = with_point_count(las_file(tmp / "cloud.las"), 5000)
    offset = int.from_bytes(path.read_bytes()[96:100], "little")
    path.write_bytes(path.read_bytes()[:offset])
    return overseg(path, tmp)


@rejects("cloud.laz: the point data breaks off after 0 of the 4,000,000,000 points the header declares")
def scan_laz_header_claims_four_billion_points(tmp, shared):
    return overseg(with_point_count(las_file(tmp / "cloud.laz", compressed=True), 4_000_000_000), tmp)


@rejects("mesh.obj: the content is a PLY file, not OBJ: rename it to .ply")
def scan_ply_named_obj(tmp, shared):
    path = tmp / "mesh.obj"
    shutil.copy(good_mesh(tmp / "src"), path)
    return ["baseline", "felzenszwalb", path, "-o", tmp / "out"]


@rejects("mesh.ply: all 1600 vertices are at the same position: the mesh has no shape")
def ply_1600_identical_vertices(tmp, shared):
    vertices, faces, colors = grid_mesh(40)
    return overseg(write(tmp / "mesh.ply", ascii_ply(vertices * 0 + 1, faces, colors)), tmp)


@rejects("mesh.ply: none of its 98 faces has an area (collinear or repeated vertices): the mesh has no surface")
def ply_faces_without_area(tmp, shared):
    vertices, faces, colors = grid_mesh()
    vertices[:, 1:] = 0  # every vertex on the x axis
    return overseg(write(tmp / "mesh.ply", ascii_ply(vertices, faces, colors)), tmp)


def room_gt_of_length(tmp: Path, shared: Shared, length: int) -> Path:
    lines = gt_lines(shared)
    write(tmp / "gt" / "room.txt", "\n".join((lines * 2)[:length]) + "\n")
    return tmp / "gt"


@rejects("gt/room.txt: has ")
def gt_of_another_length_for_fit(tmp, shared):
    # Found before the pseudo masks and the training, not after them.
    return ["fit", shared.room, "-o", tmp / "run", "--gt", room_gt_of_length(tmp, shared, len(gt_lines(shared)) - 3)]


@rejects("gt/room.txt: has ")
def gt_beside_the_scan_of_another_length_for_fit(tmp, shared):
    room = tmp / "room.ply"
    shutil.copy(shared.room, room)
    room_gt_of_length(tmp, shared, len(gt_lines(shared)) + 1)  # gt/room.txt beside the scan, which fit reads
    return ["fit", room, "-o", tmp / "run"]


def scan_folders(tmp: Path, shared: Shared, *, with_gt: bool) -> Path:
    folder = scannet_folder(tmp / "scans", shared, "room")
    if with_gt:
        write(folder / "instance_gt" / "room.txt", (shared.gt_dir / "room.txt").read_text())
    return tmp / "scans"


@rejects("scans/room: has no instance_gt/room.txt (benchmark ground truth, one value per vertex); write it with "
         "`unscene3d export-gt")
def gt_scan_folder_without_its_ground_truth(tmp, shared):
    return evaluate(shared, scan_folders(tmp, shared, with_gt=False))


def same_figures_as_the_gt_folder(tmp, shared, result):
    assert figures_of(result.output) == figures_of(invoke(evaluate(shared, shared.gt_dir)).output)


@accepts(same_figures_as_the_gt_folder)
def gt_scan_folders_with_their_own_ground_truth(tmp, shared):
    return evaluate(shared, scan_folders(tmp, shared, with_gt=True))


@accepts(same_figures_as_the_gt_folder)
def gt_one_scan_folder_with_its_own_ground_truth(tmp, shared):
    return evaluate(shared, scan_folders(tmp, shared, with_gt=True) / "room")


# ------------------------------------------------------------------------------------------------- runner


def invoke(args: list):
    return runner.invoke(app, [str(arg) for arg in args])


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if not p.is_symlink()}


def test_the_corpus_covers_every_kind_of_input():
    prefixes = ("ply_", "pcd_", "scan_", "scannet_", "gt_", "pred_", "checkpoint_", "features_", "option_", "output_")
    counts = {prefix: sum(case.name.startswith(prefix) for case in CASES) for prefix in prefixes}
    assert len(CASES) >= 60 and all(counts.values()), counts
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: Case, shared: Shared, tmp_path: Path) -> None:
    args = case.build(tmp_path, shared)
    before = snapshot(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke(args)
    assert "Traceback" not in result.output
    # No raw Python warning reaches the user (those Python shows by default; a ResourceWarning surfaces at garbage
    # collection, in whichever case runs next).
    shown = [w for w in caught if not issubclass(w.category, _WARNINGS_PYTHON_HIDES)]
    assert not shown, [f"{w.category.__name__}: {w.message}" for w in shown]
    if case.blame is None:
        assert result.exit_code == 0, result.output
        case.check(tmp_path, shared, result)
        return
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert case.blame in lines[0], lines[0]
    assert snapshot(tmp_path) == before, "the command left output behind"


def test_clipped_colours_are_logged_with_the_file(tmp_path, caplog):
    vertices, faces, colors = grid_mesh()
    colors = colors.astype(float)
    colors[2] = [300.0, -5.0, 0.0]
    mesh = write(tmp_path / "mesh.ply", ascii_ply(vertices, faces, colors, color_type="float"))
    assert invoke(overseg(mesh, tmp_path)).exit_code == 0
    assert "mesh.ply: 2 colour values lie outside 0..255" in caplog.text


def test_an_unexpected_error_is_one_line_naming_a_bug_and_its_traceback_file(shared, tmp_path, monkeypatch):
    import tempfile

    import unscene3d.segment_scans

    def broken(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(unscene3d.segment_scans, "oversegment_scans", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "logs"))
    (tmp_path / "logs").mkdir()
    mesh = good_mesh(tmp_path)
    result = invoke(overseg(mesh, tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert "RuntimeError: kaboom" in line and "this is a bug" in line
    (report,) = (tmp_path / "logs").iterdir()
    assert str(report) in line and "Traceback" in report.read_text() and "kaboom" in report.read_text()

    result = invoke(["--debug", *overseg(mesh, tmp_path)])
    assert result.exit_code == 1 and "Traceback" in result.stderr and "kaboom" in result.stderr
    assert len(list((tmp_path / "logs").iterdir())) == 1  # --debug prints instead of writing a report


def test_a_file_the_system_refuses_is_one_line_naming_it(shared, tmp_path, monkeypatch):
    import unscene3d.segment_scans

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out.segs.json"))

    monkeypatch.setattr(unscene3d.segment_scans, "oversegment_scans", refused)
    result = invoke(overseg(good_mesh(tmp_path), tmp_path))
    assert result.exit_code == 2 and result.stderr == f"error: {tmp_path / 'out.segs.json'}: Permission denied\n"


def test_real_processes_give_one_line_and_exit_codes(tmp_path):
    import subprocess
    import sys

    bad = write(tmp_path / "bad.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n0\n")
    run = subprocess.run([sys.executable, "-m", "unscene3d", "oversegment", str(bad), "-o", str(tmp_path / "o.json")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        f"error: {bad}: 'vertex' element has no y/z property"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ply"]
    good = good_mesh(tmp_path)
    run = subprocess.run([sys.executable, "-m", "unscene3d", "oversegment", str(good), "-o", str(tmp_path / "o.json")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and np.array_equal(read_segs_json(tmp_path / "o.json"),
                                                 oversegment(*grid_mesh()[:2]).seg_ids)
