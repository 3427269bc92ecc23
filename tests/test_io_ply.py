from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.io.ply import read_ply, write_ply

_STRUCT = {"char": "b", "uchar": "B", "short": "h", "ushort": "H", "int": "i", "uint": "I", "float": "f", "double": "d"}

# A square split into two triangles, plus a fifth vertex on top: small enough to check by hand.
XYZ = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 1]], dtype=np.float64)
RGB = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30], [200, 100, 50]], dtype=np.uint8)
TRIANGLES = [[0, 1, 2], [0, 2, 3], [0, 1, 4]]


def make_ply(path, fmt, elements, header_extra=(), tail=b""):
    """Write a PLY by hand. ``elements``: (name, [property spec], [records]); a property spec is
    ("float", "x") or ("list", "uchar", "int", "vertex_indices"); list values are Python lists."""
    header = ["ply", f"format {fmt} 1.0", *header_extra]
    for name, props, records in elements:
        header.append(f"element {name} {len(records)}")
        header += [f"property {' '.join(p)}" for p in props]
    header.append("end_header")
    body = bytearray()
    order = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(fmt)
    for _, props, records in elements:
        for record in records:
            if order is None:
                words = []
                for prop, value in zip(props, record):
                    words += [str(len(value)), *map(str, value)] if prop[0] == "list" else [str(value)]
                body += (" ".join(words) + "\n").encode()
                continue
            for prop, value in zip(props, record):
                if prop[0] == "list":
                    body += struct.pack(order + _STRUCT[prop[1]], len(value))
                    body += struct.pack(f"{order}{len(value)}{_STRUCT[prop[2]]}", *value)
                else:
                    body += struct.pack(order + _STRUCT[prop[0]], value)
    path.write_bytes(("\n".join(header) + "\n").encode() + bytes(body) + tail)
    return path


def vertex_element(coord="float", with_color=True, color_type="uchar", names=("red", "green", "blue"), colors=RGB):
    props = [(coord, "x"), (coord, "y"), (coord, "z")]
    if with_color:
        props += [(color_type, n) for n in names]
    records = []
    for i, p in enumerate(XYZ):
        record = [float(v) for v in p]
        if with_color:
            record += [c.item() for c in colors[i]]
        records.append(record)
    return ("vertex", props, records)


def face_element(polygons=TRIANGLES, count_type="uchar", index_type="int", name="vertex_indices"):
    return ("face", [("list", count_type, index_type, name)], [[list(p)] for p in polygons])


FORMATS = ["ascii", "binary_little_endian", "binary_big_endian"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_vertices_colours_and_triangles(tmp_path, fmt):
    path = make_ply(tmp_path / "m.ply", fmt, [vertex_element(), face_element()])
    mesh = read_ply(path)
    assert mesh.vertices.dtype == np.float64 and np.array_equal(mesh.vertices, XYZ)
    assert mesh.colors.dtype == np.uint8 and np.array_equal(mesh.colors, RGB)
    assert mesh.faces.dtype == np.int64 and mesh.faces.tolist() == TRIANGLES
    assert mesh.normals is None and mesh.vertex_properties == {}


@pytest.mark.parametrize("fmt", FORMATS)
def test_double_coordinates_keep_double_precision(tmp_path, fmt):
    path = make_ply(tmp_path / "m.ply", fmt, [vertex_element(coord="double", with_color=False)])
    mesh = read_ply(path)
    assert np.array_equal(mesh.vertices, XYZ) and mesh.colors is None


def test_double_value_precision(tmp_path):
    # Values not representable in float32 prove no float32 round trip happened.
    element = ("vertex", [("double", "x"), ("double", "y"), ("double", "z")], [[0.1, 1e-12, 123456.789]])
    mesh = read_ply(make_ply(tmp_path / "d.ply", "binary_little_endian", [element]))
    assert mesh.vertices.tolist() == [[0.1, 1e-12, 123456.789]]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("count_type", "index_type"), [("uchar", "uint"), ("int", "int"), ("ushort", "short"), ("char", "uchar")]
)
def test_vertex_index_name_and_any_count_and_index_types(tmp_path, fmt, count_type, index_type):
    face = face_element(count_type=count_type, index_type=index_type, name="vertex_index")
    mesh = read_ply(make_ply(tmp_path / "m.ply", fmt, [vertex_element(), face]))
    assert mesh.faces.tolist() == TRIANGLES


@pytest.mark.parametrize("fmt", FORMATS)
def test_polygons_are_fan_triangulated_and_degenerate_ones_dropped(tmp_path, fmt):
    polygons = [[0, 1, 2, 3], [0, 1, 4], [0, 1], [4, 3, 2, 1, 0]]
    mesh = read_ply(make_ply(tmp_path / "m.ply", fmt, [vertex_element(), face_element(polygons)]))
    expected = [[0, 1, 2], [0, 2, 3], [0, 1, 4], [4, 3, 2], [4, 2, 1], [4, 1, 0]]
    assert mesh.faces.tolist() == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_all_quads_take_the_fixed_size_path_and_are_triangulated(tmp_path, fmt):
    mesh = read_ply(make_ply(tmp_path / "m.ply", fmt, [vertex_element(), face_element([[0, 1, 2, 3], [1, 2, 3, 4]])]))
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3], [1, 2, 3], [1, 3, 4]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_other_elements_before_and_after_are_skipped(tmp_path, fmt):
    # Variable-length list records before 'vertex' force the reader to parse their sizes.
    material = ("material", [("uchar", "id"), ("list", "uchar", "float", "values")], [[1, [0.5]], [2, [1.0, 2.0, 3.0]]])
    edge = ("edge", [("int", "vertex1"), ("int", "vertex2")], [[0, 1], [1, 2]])
    mesh = read_ply(make_ply(tmp_path / "m.ply", fmt, [material, vertex_element(), edge, face_element()]))
    assert np.array_equal(mesh.vertices, XYZ) and mesh.faces.tolist() == TRIANGLES


@pytest.mark.parametrize("fmt", FORMATS)
def test_point_cloud_has_no_faces(tmp_path, fmt):
    mesh = read_ply(make_ply(tmp_path / "p.ply", fmt, [vertex_element()]))
    assert mesh.faces.shape == (0, 3) and mesh.faces.dtype == np.int64
    assert len(mesh.vertices) == 5


def test_face_element_with_extra_properties(tmp_path):
    face = (
        "face",
        [("list", "uchar", "int", "vertex_indices"), ("list", "uchar", "float", "texcoord"), ("uchar", "flags")],
        [[t, [0.0] * 6, 7] for t in TRIANGLES],
    )
    for fmt in FORMATS:
        mesh = read_ply(make_ply(tmp_path / f"{fmt}.ply", fmt, [vertex_element(), face]))
        assert mesh.faces.tolist() == TRIANGLES


@pytest.mark.parametrize(
    ("color_type", "scale"), [("ushort", 257), ("float", 1 / 255), ("double", 1 / 255), ("int", 1)]
)
def test_colour_types_are_normalised_to_uint8(tmp_path, color_type, scale):
    stored = RGB.astype(np.float64) * scale
    if color_type in ("ushort", "int"):
        stored = stored.astype(np.int64)
    mesh = read_ply(
        make_ply(tmp_path / "c.ply", "binary_little_endian", [vertex_element(color_type=color_type, colors=stored)])
    )
    assert np.array_equal(mesh.colors, RGB)


def test_float_colours_in_0_255_range_are_kept(tmp_path):
    mesh = read_ply(
        make_ply(tmp_path / "c.ply", "ascii", [vertex_element(color_type="float", colors=RGB.astype(float))])
    )
    assert np.array_equal(mesh.colors, RGB)


def test_rgb_short_names_alpha_normals_and_other_properties(tmp_path):
    props = [("float", "x"), ("float", "y"), ("float", "z"), ("float", "nx"), ("float", "ny"), ("float", "nz")]
    props += [("uchar", "r"), ("uchar", "g"), ("uchar", "b"), ("uchar", "alpha"), ("ushort", "label")]
    records = [[*XYZ[i], 0.0, 0.0, 1.0, *RGB[i].tolist(), 255, 40 - i] for i in range(5)]
    mesh = read_ply(make_ply(tmp_path / "n.ply", "binary_big_endian", [("vertex", props, records)]))
    assert np.array_equal(mesh.colors, RGB)
    assert mesh.normals.dtype == np.float32 and mesh.normals.tolist() == [[0, 0, 1]] * 5
    assert sorted(mesh.vertex_properties) == ["alpha", "label"]
    assert mesh.vertex_properties["label"].tolist() == [40, 39, 38, 37, 36]


def test_crlf_header_and_comments_with_any_bytes(tmp_path):
    path = make_ply(tmp_path / "m.ply", "binary_little_endian", [vertex_element(), face_element()])
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].replace(b"\n", b"\r\n").replace(b"format", "comment caf\u00e9 end_header\r\nformat".encode())
    path.write_bytes(header + data[end:])
    mesh = read_ply(path)
    assert mesh.faces.tolist() == TRIANGLES and np.array_equal(mesh.colors, RGB)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("with_faces_and_colors", [True, False])
def test_write_then_read_round_trip(tmp_path, binary, with_faces_and_colors):
    rng = np.random.default_rng(0)
    vertices = rng.normal(size=(50, 3)).astype(np.float32).astype(np.float64)
    faces = rng.integers(0, 50, size=(30, 3)) if with_faces_and_colors else None
    colors = rng.integers(0, 256, size=(50, 3)).astype(np.uint8) if with_faces_and_colors else None
    path = tmp_path / "out" / "r.ply"
    write_ply(path, vertices, faces, colors, binary=binary)
    mesh = read_ply(path)
    assert np.array_equal(mesh.vertices, vertices)
    if with_faces_and_colors:
        assert np.array_equal(mesh.faces, faces) and np.array_equal(mesh.colors, colors)
    else:
        assert mesh.faces.shape == (0, 3) and mesh.colors is None
    assert [p.name for p in path.parent.iterdir()] == ["r.ply"]


def test_write_binary_layout_is_float_xyz_uchar_rgb_int_faces(tmp_path):
    write_ply(tmp_path / "w.ply", XYZ, np.array(TRIANGLES), RGB)
    data = (tmp_path / "w.ply").read_bytes()
    header, body = data.split(b"end_header\n")
    assert b"format binary_little_endian 1.0" in header and b"property list uchar int vertex_indices" in header
    assert len(body) == 5 * 15 + 3 * 13


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="vertices"):
        write_ply(tmp_path / "a.ply", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="face indices"):
        write_ply(tmp_path / "a.ply", XYZ, np.array([[0, 1, 5]]))
    with pytest.raises(ValueError, match="colors"):
        write_ply(tmp_path / "a.ply", XYZ, colors=np.full((5, 3), 0.5))
    assert not list(tmp_path.iterdir())


# --- bad input ---------------------------------------------------------------------------------------


def expect_error(path, *fragments):
    with pytest.raises(InputError) as info:
        read_ply(path)
    message = str(info.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file(tmp_path):
    expect_error(tmp_path / "missing.ply", "no such file")


def test_bad_magic(tmp_path):
    (tmp_path / "x.ply").write_bytes(b"OFF\n3 1 0\n")
    expect_error(tmp_path / "x.ply", "not a PLY file")


def test_missing_end_header(tmp_path):
    (tmp_path / "a.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n")
    expect_error(tmp_path / "a.ply", "end_header")
    (tmp_path / "b.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n0 0 0\n")
    expect_error(tmp_path / "b.ply", "end_header")
    (tmp_path / "c.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\n\xff\xfe\x00\n")
    expect_error(tmp_path / "c.ply", "end_header")


@pytest.mark.parametrize(
    ("header_line", "problem"),
    [
        ("format binary_middle_endian 1.0", "unknown format"),
        ("format ascii 1.0\nelement vertex 1\nproperty float128 x", "unknown type 'float128'"),
        ("format ascii 1.0\nelement vertex 1\nproperty list float int x", "count type must be an integer"),
        ("format ascii 1.0\nproperty float x", "property before any element"),
        ("format ascii 1.0\nelement vertex 1\nproperty float x\nproperty int x", "repeats property 'x'"),
        ("element vertex 1\nproperty float x", "no 'format' line"),
    ],
)
def test_malformed_header(tmp_path, header_line, problem):
    (tmp_path / "h.ply").write_bytes(f"ply\n{header_line}\nend_header\n".encode())
    expect_error(tmp_path / "h.ply", "malformed PLY header", problem)


def test_no_vertex_element_or_no_xyz(tmp_path):
    make_ply(tmp_path / "a.ply", "ascii", [face_element()])
    expect_error(tmp_path / "a.ply", "no 'vertex' element")
    make_ply(tmp_path / "b.ply", "ascii", [("vertex", [("float", "x"), ("float", "y")], [[0, 0]])])
    expect_error(tmp_path / "b.ply", "no z property")


def test_face_element_without_index_list(tmp_path):
    make_ply(tmp_path / "f.ply", "ascii", [vertex_element(), ("face", [("int", "a")], [[1]])])
    expect_error(tmp_path / "f.ply", "vertex_indices")


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian"])
def test_truncated_binary_vertices(tmp_path, fmt):
    path = make_ply(tmp_path / "t.ply", fmt, [vertex_element(), face_element()])
    data = path.read_bytes()
    body_start = data.index(b"end_header\n") + 11
    path.write_bytes(data[: body_start + 15 * 3 + 4])  # 3 whole vertices of 15 bytes, then part of one
    expect_error(path, "truncated", "'vertex' declares 5 records but the file holds only 3")


@pytest.mark.parametrize("polygons", [TRIANGLES, [[0, 1, 2, 3], [0, 1, 4], [1, 2, 3]]])
def test_truncated_binary_faces(tmp_path, polygons):
    path = make_ply(tmp_path / "t.ply", "binary_little_endian", [vertex_element(), face_element(polygons)])
    path.write_bytes(path.read_bytes()[:-3])
    expect_error(path, "truncated", "'face' declares 3 records but the file holds only 2")


def test_truncated_ascii(tmp_path):
    path = make_ply(tmp_path / "t.ply", "ascii", [vertex_element(), face_element()])
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n")
    expect_error(path, "truncated", "the data has 6 lines but the header declares 8 records (5 vertex, 3 face)")


def test_ascii_non_number(tmp_path):
    path = make_ply(tmp_path / "t.ply", "ascii", [vertex_element()])
    path.write_text(path.read_text().replace("0.5", "abc"))
    expect_error(path, "not a number")


@pytest.mark.parametrize("fmt", FORMATS)
def test_face_index_out_of_range(tmp_path, fmt):
    path = make_ply(tmp_path / "f.ply", fmt, [vertex_element(), face_element([[0, 1, 2], [0, 7, 2]])])
    expect_error(path, "face vertex index 7 is out of range for 5 vertices")
    path = make_ply(tmp_path / "g.ply", fmt, [vertex_element(), face_element([[0, -1, 2]])])
    expect_error(path, "index -1 is out of range")


@pytest.mark.parametrize("fmt", FORMATS)
def test_negative_list_count(tmp_path, fmt):
    path = make_ply(tmp_path / "n.ply", fmt, [vertex_element(), face_element(count_type="char")])
    data = path.read_bytes()
    if fmt == "ascii":
        data = data.replace(b"\n3 0 1 2\n", b"\n-3 0 1 2\n")
    else:
        start = data.index(b"end_header\n") + 11 + 5 * 15
        data = data[:start] + struct.pack("b", -3) + data[start + 1 :]
    path.write_bytes(data)
    expect_error(path, "record 0", "list count -3")


def test_non_integer_ascii_list_count(tmp_path):
    path = make_ply(tmp_path / "n.ply", "ascii", [vertex_element(), face_element()])
    path.write_bytes(path.read_bytes().replace(b"\n3 0 2 3\n", b"\nnan 0 2 3\n"))
    expect_error(path, "record 1", "bad list count nan")


@pytest.mark.parametrize("fmt", FORMATS)
def test_nan_and_inf_coordinates_refused_in_a_mesh(tmp_path, fmt):
    records = [[0, 0, 0], [float("nan"), 0, 0], [0, float("inf"), 0]]
    element = ("vertex", [("float", "x"), ("float", "y"), ("float", "z")], records)
    path = make_ply(tmp_path / "nan.ply", fmt, [element, face_element([(0, 1, 2)])])
    expect_error(path, "2 of 3 vertices have NaN or infinite coordinates", "vertex 1")


@pytest.mark.parametrize("fmt", FORMATS)
def test_nan_rows_of_a_point_cloud_are_read(tmp_path, fmt):
    # An organized depth frame saved as PLY keeps its missing pixels as NaN rows; its loader drops them.
    records = [[0, 0, 0], [float("nan"), 0, 0], [0, float("inf"), 0]]
    element = ("vertex", [("float", "x"), ("float", "y"), ("float", "z")], records)
    cloud = read_ply(make_ply(tmp_path / "nan.ply", fmt, [element]))
    assert cloud.vertices.shape == (3, 3) and np.isfinite(cloud.vertices).all(axis=1).tolist() == [True, False, False]


# --- real data ---------------------------------------------------------------------------------------


def test_real_scannet_mesh(scene0000_dir):
    path = scene0000_dir / "scene0000_00_vh_clean_2.ply"
    start = time.perf_counter()
    mesh = read_ply(path)
    elapsed = time.perf_counter() - start
    assert mesh.vertices.shape == (81369, 3) and mesh.faces.shape == (153587, 3) and mesh.colors.shape == (81369, 3)
    assert sorted(mesh.vertex_properties) == ["alpha"]
    # Independent decoding of the known layout: float xyz + uchar rgba, then uchar count + 3 int.
    data = path.read_bytes()
    body = data.index(b"end_header\n") + 11
    vertices = np.frombuffer(data, dtype=[("xyz", "<f4", 3), ("rgba", "u1", 4)], count=81369, offset=body)
    faces = np.frombuffer(data, dtype=[("n", "u1"), ("v", "<i4", 3)], offset=body + 81369 * 16)
    assert np.array_equal(mesh.vertices, vertices["xyz"]) and np.array_equal(mesh.colors, vertices["rgba"][:, :3])
    assert np.array_equal(mesh.faces, faces["v"]) and np.all(faces["n"] == 3)
    assert elapsed < 1.0, f"reading the ScanNet mesh took {elapsed:.3f} s"
