"""PLY meshes and point clouds, read and written with numpy alone.

Reading supports the three PLY formats (ascii, binary little/big endian), vertex properties of any
numeric type and faces given as lists of any count/index type. Binary elements whose records all have
the same size (the usual case: every face a triangle) are read as one structured numpy array; other
elements fall back to a record-by-record parser. Polygons are fan-triangulated.
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from unscene3d.errors import InputError
from unscene3d.io.atomic import atomic_output

logger = logging.getLogger(__name__)

_TYPES = {
    "char": "i1", "int8": "i1",
    "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4",
    "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}  # fmt: skip
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_COLOR_NAMES = (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"))
_NORMAL_NAMES = ("nx", "ny", "nz")
_FACE_LIST_NAMES = ("vertex_indices", "vertex_index")


@dataclass
class PlyMesh:
    """A mesh (or a point cloud when ``faces`` is empty) read from a PLY file.

    Attributes:
        vertices: (N, 3) float64 positions.
        faces: (F, 3) int64 triangles; polygons are fan-triangulated; (0, 3) when the file has none.
        colors: (N, 3) uint8 RGB, or None.
        normals: (N, 3) float32, or None.
        vertex_properties: every other vertex property (e.g. ``label``, ``alpha``), by name.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    normals: np.ndarray | None = None
    vertex_properties: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class _Property:
    name: str
    dtype: str  # numpy type code without byte order, e.g. "f4"
    count_dtype: str | None = None  # set for list properties

    @property
    def is_list(self) -> bool:
        return self.count_dtype is not None


@dataclass
class _Element:
    name: str
    count: int
    properties: list[_Property]


class _ListValues(NamedTuple):
    """A list property's values: ``counts[i]`` items for record i, concatenated in ``values``."""

    counts: np.ndarray
    values: np.ndarray

    def fixed_width(self) -> int | None:
        if len(self.counts) and np.all(self.counts == self.counts[0]):
            return int(self.counts[0])
        return None


class _Header(NamedTuple):
    byte_order: str | None  # None for ascii
    elements: list[_Element]
    body_offset: int


# ---------------------------------------------------------------------------------------------------
# Reading


def read_ply(path: str | Path) -> PlyMesh:
    """Read a PLY mesh or point cloud.

    A point cloud (no faces) may have NaN/inf coordinates (its loader drops those points); a mesh may not.

    Raises:
        InputError: the file is missing, is not a PLY file, has a malformed header, lacks vertex
            positions, is shorter than its header promises, or has invalid values (NaN/inf
            mesh coordinates, negative list counts, face indices out of range).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file" if not path.exists() else "not a file")
    data = path.read_bytes()
    header = _parse_header(path, data)
    elements = {element.name: element for element in header.elements}
    if "vertex" not in elements:
        raise InputError(path, "PLY header declares no 'vertex' element")
    vertex_props = {p.name for p in elements["vertex"].properties}
    missing = [axis for axis in "xyz" if axis not in vertex_props]
    if missing:
        raise InputError(path, f"'vertex' element has no {'/'.join(missing)} property")
    face_list = _face_list_name(path, elements.get("face"))

    # Elements after both 'vertex' and 'face' are never needed, so parsing stops there.
    wanted = {"vertex"} | ({"face"} if "face" in elements else set())
    columns: dict[str, dict[str, np.ndarray | _ListValues]] = {}
    if header.byte_order is None:
        columns = _read_ascii_body(path, header, data[header.body_offset :], wanted)
    else:
        offset = header.body_offset
        for element in header.elements:
            if not wanted - columns.keys():
                break
            columns[element.name], offset = _read_binary_element(path, data, offset, element, header.byte_order)
        leftover = len(data[offset:].rstrip(b"\r\n\t \0"))
        # Data beyond the last element means the header's counts are wrong (e.g. fewer vertices declared
        # than written), so what was parsed is misaligned.
        if len(columns) == len(header.elements) and leftover > 0:
            raise InputError(path, f"the data holds {leftover} bytes more than the header declares "
                                   f"({_element_counts(header)}): the header's element counts are wrong")

    mesh = _vertex_attributes(path, columns["vertex"])
    if face_list is not None:
        mesh.faces = _triangulate(path, columns["face"][face_list], len(mesh.vertices))
    bad = ~np.isfinite(mesh.vertices).all(axis=1)
    # A point cloud may hold NaN rows (an organized depth frame's missing pixels); a mesh may not.
    if bad.any() and len(mesh.faces):
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            path,
            f"{int(bad.sum())} of {len(mesh.vertices)} vertices have NaN or infinite coordinates (first: vertex {first})",
        )
    return mesh


def _element_counts(header: _Header) -> str:
    return ", ".join(f"{element.count} {element.name}" for element in header.elements)


def _read_ascii_body(
    path: Path, header: _Header, body: bytes, wanted: set[str]
) -> dict[str, dict[str, np.ndarray | _ListValues]]:
    columns: dict[str, dict[str, np.ndarray | _ListValues]] = {}
    try:
        tokens = _ascii_tokens(path, body)
        position = 0
        for element in header.elements:
            if not wanted - columns.keys():
                break
            columns[element.name], position = _read_ascii_element(path, tokens, position, element)
        if len(columns) == len(header.elements) and position < len(tokens):
            raise InputError(path, f"the data holds {len(tokens) - position} values more than the header declares")
    except InputError:
        # ASCII PLY holds one record per line: a line count other than the header's explains any parse
        # error better than the misaligned value it led to.
        declared = sum(element.count for element in header.elements)
        lines = sum(1 for line in body.splitlines() if line.strip())
        if lines != declared:
            raise InputError(path, f"the data has {lines} lines but the header declares {declared} records "
                                   f"({_element_counts(header)}): the file is truncated or its counts are wrong"
                             ) from None
        raise
    return columns


def _parse_header(path: Path, data: bytes) -> _Header:
    if not data.startswith(b"ply") or data[3:4] not in (b"\n", b"\r"):
        raise InputError(path, "not a PLY file (does not start with 'ply')")
    byte_order: str | None = None
    format_seen = False
    elements: list[_Element] = []
    position = 0
    while True:
        newline = data.find(b"\n", position)
        if newline < 0:
            raise InputError(path, "malformed PLY header: no 'end_header' line")
        raw_line = data[position:newline]
        position = newline + 1
        # Comments may hold any bytes; every other header line is plain ASCII.
        if raw_line.startswith((b"comment", b"obj_info")):
            continue
        try:
            words = raw_line.decode("ascii").split()
        except UnicodeDecodeError:
            raise InputError(path, "malformed PLY header: no 'end_header' line before binary data") from None
        if not words or words == ["ply"]:
            continue
        keyword = words[0]
        if keyword == "end_header":
            break
        if keyword == "format":
            if len(words) != 3 or words[1] not in _FORMATS:
                raise InputError(path, f"malformed PLY header: unknown format line {' '.join(words)!r}")
            byte_order = _FORMATS[words[1]]
            format_seen = True
        elif keyword == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise InputError(path, f"malformed PLY header: bad element line {' '.join(words)!r}")
            elements.append(_Element(words[1], int(words[2]), []))
        elif keyword == "property":
            if not elements:
                raise InputError(path, f"malformed PLY header: property before any element: {' '.join(words)!r}")
            prop = _parse_property(path, words)
            element = elements[-1]
            if any(other.name == prop.name for other in element.properties):
                raise InputError(path, f"malformed PLY header: element {element.name!r} repeats property {prop.name!r}")
            element.properties.append(prop)
        else:
            raise InputError(path, f"malformed PLY header: unexpected line {raw_line[:60]!r} (missing 'end_header'?)")
    if not format_seen:
        raise InputError(path, "malformed PLY header: no 'format' line")
    return _Header(byte_order, elements, position)


def _parse_property(path: Path, words: list[str]) -> _Property:
    line = " ".join(words)
    if len(words) == 5 and words[1] == "list":
        count_type, item_type, name = words[2:]
        for type_name in (count_type, item_type):
            if type_name not in _TYPES:
                raise InputError(path, f"malformed PLY header: unknown type {type_name!r} in {line!r}")
        if _TYPES[count_type][0] == "f":
            raise InputError(path, f"malformed PLY header: list count type must be an integer in {line!r}")
        return _Property(name, _TYPES[item_type], _TYPES[count_type])
    if len(words) == 3:
        if words[1] not in _TYPES:
            raise InputError(path, f"malformed PLY header: unknown type {words[1]!r} in {line!r}")
        return _Property(words[2], _TYPES[words[1]])
    raise InputError(path, f"malformed PLY header: bad property line {line!r}")


def _face_list_name(path: Path, face: _Element | None) -> str | None:
    if face is None:
        return None
    for prop in face.properties:
        if prop.is_list and prop.name in _FACE_LIST_NAMES:
            return prop.name
    raise InputError(path, "'face' element has no 'vertex_indices' (or 'vertex_index') list property")


def _read_binary_element(
    path: Path, data: bytes, offset: int, element: _Element, byte_order: str
) -> tuple[dict[str, np.ndarray | _ListValues], int]:
    """Parse one binary element starting at ``offset``; return its columns and the offset after it."""
    if element.count == 0:
        return _empty_columns(element), offset
    if not any(prop.is_list for prop in element.properties):
        record = np.dtype([(p.name, byte_order + p.dtype) for p in element.properties])
        return _read_fixed_records(path, data, offset, element, record), offset + element.count * record.itemsize

    # Guess that every record has the list sizes of the first one (e.g. all faces are triangles); the
    # guess is exact when every record's counts match, since each record then starts where expected.
    first, _ = _parse_binary_records(path, data, offset, element, byte_order, 1)
    list_sizes = {p.name: int(first[p.name].counts[0]) for p in element.properties if p.is_list}
    record = np.dtype(_fixed_record_fields(element, byte_order, list_sizes))
    end = offset + element.count * record.itemsize
    if end <= len(data):
        table = np.frombuffer(data, dtype=record, count=element.count, offset=offset)
        if all(np.all(table[f"{name}__count"] == size) for name, size in list_sizes.items()):
            return _columns_from_table(element, table, list_sizes), end
    return _parse_binary_records(path, data, offset, element, byte_order, element.count)


def _read_fixed_records(
    path: Path, data: bytes, offset: int, element: _Element, record: np.dtype
) -> dict[str, np.ndarray | _ListValues]:
    available = max(len(data) - offset, 0) // record.itemsize
    if available < element.count:
        raise InputError(
            path,
            f"truncated PLY data: element {element.name!r} declares {element.count} records "
            f"but the file holds only {available} (the file is cut short, or the header's counts are wrong)",
        )
    table = np.frombuffer(data, dtype=record, count=element.count, offset=offset)
    return {p.name: table[p.name].astype(p.dtype) for p in element.properties}


def _fixed_record_fields(element: _Element, byte_order: str, list_sizes: dict[str, int]) -> list[tuple]:
    fields: list[tuple] = []
    for prop in element.properties:
        if prop.is_list:
            fields.append((f"{prop.name}__count", byte_order + prop.count_dtype))
            fields.append((prop.name, byte_order + prop.dtype, (list_sizes[prop.name],)))
        else:
            fields.append((prop.name, byte_order + prop.dtype))
    return fields


def _columns_from_table(
    element: _Element, table: np.ndarray, list_sizes: dict[str, int]
) -> dict[str, np.ndarray | _ListValues]:
    columns: dict[str, np.ndarray | _ListValues] = {}
    for prop in element.properties:
        values = table[prop.name].astype(prop.dtype)
        if prop.is_list:
            counts = np.full(len(table), list_sizes[prop.name], dtype=np.int64)
            columns[prop.name] = _ListValues(counts, values.reshape(-1))
        else:
            columns[prop.name] = values
    return columns


def _parse_binary_records(
    path: Path, data: bytes, offset: int, element: _Element, byte_order: str, num_records: int
) -> tuple[dict[str, np.ndarray | _ListValues], int]:
    """Record-by-record parser for elements whose records differ in size (e.g. mixed polygons)."""
    scalars: dict[str, list] = {p.name: [] for p in element.properties if not p.is_list}
    counts: dict[str, list[int]] = {p.name: [] for p in element.properties if p.is_list}
    items: dict[str, list] = {p.name: [] for p in element.properties if p.is_list}
    codes = {p.name: (np.dtype(p.dtype).char, np.dtype(p.count_dtype or "u1").char) for p in element.properties}
    record = 0
    try:
        for record in range(num_records):
            for prop in element.properties:
                value_code, count_code = codes[prop.name]
                if not prop.is_list:
                    scalars[prop.name].append(struct.unpack_from(byte_order + value_code, data, offset)[0])
                    offset += struct.calcsize(value_code)
                    continue
                (size,) = struct.unpack_from(byte_order + count_code, data, offset)
                offset += struct.calcsize(count_code)
                if size < 0:
                    raise InputError(
                        path, f"element {element.name!r} record {record}: negative list count {size} for {prop.name!r}"
                    )
                fmt = f"{byte_order}{size}{value_code}"
                items[prop.name].extend(struct.unpack_from(fmt, data, offset))
                counts[prop.name].append(size)
                offset += struct.calcsize(fmt)
    except struct.error:
        raise InputError(
            path,
            f"truncated PLY data: element {element.name!r} declares {element.count} records "
            f"but the file holds only {record} (the file is cut short, or the header's counts are wrong)",
        ) from None
    columns: dict[str, np.ndarray | _ListValues] = {}
    for prop in element.properties:
        if prop.is_list:
            columns[prop.name] = _ListValues(
                np.asarray(counts[prop.name], dtype=np.int64), np.asarray(items[prop.name], dtype=prop.dtype)
            )
        else:
            columns[prop.name] = np.asarray(scalars[prop.name], dtype=prop.dtype)
    return columns, offset


def _ascii_tokens(path: Path, body: bytes) -> np.ndarray:
    try:
        return np.array(body.split(), dtype=np.float64)
    except ValueError:
        raise InputError(path, "ASCII PLY data holds a value that is not a number") from None


def _read_ascii_element(
    path: Path, tokens: np.ndarray, position: int, element: _Element
) -> tuple[dict[str, np.ndarray | _ListValues], int]:
    """Parse one ASCII element from the token stream; return its columns and the next token position."""
    if element.count == 0:
        return _empty_columns(element), position

    def truncated(found: int) -> InputError:
        return InputError(
            path,
            f"truncated PLY data: element {element.name!r} declares {element.count} records "
            f"but the file holds only {found}",
        )

    # As for binary data: assume the first record's list sizes hold for every record, then verify.
    list_sizes: dict[str, int] = {}
    width = 0
    for prop in element.properties:
        if prop.is_list:
            if position + width >= len(tokens):
                raise truncated(0)
            list_sizes[prop.name] = _list_count(path, element, 0, prop, tokens[position + width])
            width += 1 + list_sizes[prop.name]
        else:
            width += 1
    end = position + element.count * width
    if end <= len(tokens):
        table = tokens[position:end].reshape(element.count, width)
        columns: dict[str, np.ndarray | _ListValues] = {}
        column = 0
        fixed = True
        for prop in element.properties:
            if prop.is_list:
                size = list_sizes[prop.name]
                if not np.all(table[:, column] == size):
                    fixed = False
                    break
                sizes = np.full(element.count, size, dtype=np.int64)
                items = table[:, column + 1 : column + 1 + size].reshape(-1)
                values = _ascii_values(path, element, prop, items, sizes)
                columns[prop.name] = _ListValues(sizes, values)
                column += 1 + size
            else:
                columns[prop.name] = _ascii_values(path, element, prop, table[:, column])
                column += 1
        if fixed:
            return columns, end

    scalars: dict[str, list[float]] = {p.name: [] for p in element.properties if not p.is_list}
    counts: dict[str, list[int]] = {p.name: [] for p in element.properties if p.is_list}
    items: dict[str, list[np.ndarray]] = {p.name: [] for p in element.properties if p.is_list}
    for record in range(element.count):
        for prop in element.properties:
            if position >= len(tokens):
                raise truncated(record)
            if not prop.is_list:
                scalars[prop.name].append(tokens[position])
                position += 1
                continue
            size = _list_count(path, element, record, prop, tokens[position])
            if position + 1 + size > len(tokens):
                raise truncated(record)
            items[prop.name].append(tokens[position + 1 : position + 1 + size])
            counts[prop.name].append(size)
            position += 1 + size
    columns = {}
    for prop in element.properties:
        if prop.is_list:
            values = np.concatenate(items[prop.name]) if items[prop.name] else np.zeros(0)
            sizes = np.asarray(counts[prop.name], dtype=np.int64)
            columns[prop.name] = _ListValues(sizes, _ascii_values(path, element, prop, values, sizes))
        else:
            columns[prop.name] = _ascii_values(path, element, prop, np.asarray(scalars[prop.name]))
    return columns, position


def _ascii_values(
    path: Path, element: _Element, prop: _Property, values: np.ndarray, counts: np.ndarray | None = None
) -> np.ndarray:
    """ASCII numbers as the property's type; integer types must get whole numbers within their range
    (a cast would silently truncate 1.5 or wrap 300 into a uchar). ``counts``: list sizes per record."""
    dtype = np.dtype(prop.dtype)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):  # 1e39 as float32 is inf, which the coordinate check reports
            return values.astype(dtype)
    info = np.iinfo(dtype)
    bad = ~np.isfinite(values) | (values != np.floor(values)) | (values < info.min) | (values > info.max)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        record = first if counts is None else int(np.searchsorted(np.cumsum(counts), first, side="right"))
        type_name = next(name for name, code in _TYPES.items() if code == prop.dtype)
        raise InputError(
            path,
            f"element {element.name!r} record {record}: {prop.name!r} value {values[first]:g} is not a whole "
            f"number in {info.min}..{info.max} (its type is {type_name})",
        )
    return values.astype(dtype)


def _list_count(path: Path, element: _Element, record: int, prop: _Property, token: float) -> int:
    if not math.isfinite(token) or token < 0 or token != int(token):
        raise InputError(path, f"element {element.name!r} record {record}: bad list count {token:g} for {prop.name!r}")
    return int(token)


def _empty_columns(element: _Element) -> dict[str, np.ndarray | _ListValues]:
    return {
        p.name: _ListValues(np.zeros(0, np.int64), np.zeros(0, p.dtype)) if p.is_list else np.zeros(0, p.dtype)
        for p in element.properties
    }


def _vertex_attributes(path: Path, columns: dict[str, np.ndarray | _ListValues]) -> PlyMesh:
    vertices = np.stack([np.asarray(columns[axis], dtype=np.float64) for axis in "xyz"], axis=1)
    used = {"x", "y", "z"}
    colors = None
    for names in _COLOR_NAMES:
        if all(name in columns for name in names):
            colors = colors_to_uint8(path, [columns[name] for name in names])
            used.update(names)
            break
    normals = None
    if all(name in columns for name in _NORMAL_NAMES):
        normals = np.stack([np.asarray(columns[name], dtype=np.float32) for name in _NORMAL_NAMES], axis=1)
        used.update(_NORMAL_NAMES)
        bad = int((~np.isfinite(normals).all(axis=1)).sum())
        if bad:
            # Used as they are, NaN normals poison every weight and feature they touch.
            logger.warning("%s: %d of %d vertex normals are NaN or infinite; ignoring the file's normals "
                           "(they are computed from the faces where needed)", path, bad, len(normals))
            normals = None
    others: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        if name in used:
            continue
        if isinstance(values, _ListValues):
            width = values.fixed_width()
            if width is None:
                logger.warning("%s: skipping vertex list property %r (records differ in length)", path, name)
                continue
            values = values.values.reshape(-1, width)
        others[name] = values
    return PlyMesh(vertices, np.zeros((0, 3), np.int64), colors, normals, others)


def colors_to_uint8(path: Path, channels: list[np.ndarray]) -> np.ndarray:
    """Red, green and blue channels as (N, 3) uint8 (``path`` names the file in the warning).

    8-bit channels pass through; 16-bit ones are scaled from 0..65535; other integer types are taken
    as 0..255 values stored in a wider type; float channels are taken as 0..1 unless any value exceeds
    1, in which case they are taken as 0..255 (both conventions occur in the wild). Values outside the
    range (or NaN) are clipped, with a warning.
    """
    dtype = channels[0].dtype
    values = np.stack([np.asarray(channel, dtype=np.float64) for channel in channels], axis=1)
    if dtype == np.uint8:
        return values.astype(np.uint8)
    if dtype.kind in "iu" and dtype.itemsize == 2:
        values = np.round(values / 257.0)
    elif dtype.kind == "f":
        if values.size and np.nanmax(values) <= 1.0:
            values = values * 255.0
        values = np.round(values)
    outside = int((~((values >= 0) & (values <= 255))).sum())
    if outside:
        logger.warning("%s: %d colour values lie outside 0..255 (or are NaN); clipped to that range", path, outside)
    return np.nan_to_num(values).clip(0, 255).astype(np.uint8)


def _triangulate(path: Path, polygons: _ListValues, num_vertices: int) -> np.ndarray:
    """Fan-triangulate polygons: (v0, v_j, v_j+1) for j = 1 .. n-2; polygons under 3 vertices are dropped."""
    counts, indices = polygons
    if indices.dtype.kind == "f":
        whole = np.isfinite(indices) & (indices == np.floor(indices))
        if not whole.all():
            raise InputError(path, f"face vertex index {indices[~whole][0]:g} is not a whole number")
    indices = indices.astype(np.int64, copy=False)
    if len(indices):
        bad = (indices < 0) | (indices >= num_vertices)
        if bad.any():
            first = int(indices[np.flatnonzero(bad)[0]])
            raise InputError(
                path,
                f"face vertex index {first} is out of range for {num_vertices} vertices "
                f"({int(bad.sum())} bad indices in all)",
            )
    if len(counts) and np.all(counts == 3):
        return indices.reshape(-1, 3)
    triangles_per_polygon = np.maximum(counts - 2, 0)
    if np.any(counts < 3):
        logger.warning("%s: dropping %d faces with fewer than 3 vertices", path, int(np.sum(counts < 3)))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    polygon_of_triangle = np.repeat(np.arange(len(counts)), triangles_per_polygon)
    first_triangle = np.concatenate([[0], np.cumsum(triangles_per_polygon)[:-1]]).astype(np.int64)
    j = np.arange(len(polygon_of_triangle)) - first_triangle[polygon_of_triangle] + 1
    base = starts[polygon_of_triangle]
    return np.stack([indices[base], indices[base + j], indices[base + j + 1]], axis=1)


# ---------------------------------------------------------------------------------------------------
# Writing


def write_ply(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    binary: bool = True,
    comment: str | None = None,
) -> None:
    """Write a mesh or point cloud as PLY, atomically.

    Coordinates are stored as float32 (as in ScanNet's meshes), colours as uchar red/green/blue (they
    must be integers in 0..255) and faces as ``list uchar int vertex_indices``. ``binary=False`` writes
    ASCII with enough digits to read back the same float32 values. ``comment`` adds a header comment line.
    """
    vertices = np.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {vertices.shape}")
    num_vertices = len(vertices)
    faces = np.zeros((0, 3), np.int64) if faces is None else np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {faces.shape}")
    if len(faces) and (faces.min() < 0 or faces.max() >= num_vertices):
        raise ValueError(f"face indices must lie in [0, {num_vertices})")
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != (num_vertices, 3):
            raise ValueError(f"colors must be ({num_vertices}, 3), got {colors.shape}")
        if colors.dtype.kind not in "iu" or (colors.size and (colors.min() < 0 or colors.max() > 255)):
            raise ValueError("colors must be integers in 0..255")

    vertex_fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        vertex_fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertex_table = np.empty(num_vertices, dtype=vertex_fields)
    for axis, name in enumerate("xyz"):
        vertex_table[name] = vertices[:, axis]
    if colors is not None:
        for channel, name in enumerate(("red", "green", "blue")):
            vertex_table[name] = colors[:, channel]
    face_table = np.empty(len(faces), dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    face_table["count"] = 3
    face_table["indices"] = faces

    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", "comment written by unscene3d"]
    if comment is not None:
        if "\n" in comment or "\r" in comment:
            raise ValueError("a PLY comment must be one line")
        header.append(f"comment {comment}")
    header += [f"element vertex {num_vertices}", "property float x", "property float y", "property float z"]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    if len(faces):
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    header.append("end_header")

    with atomic_output(path) as tmp, open(tmp, "wb") as out:
        out.write(("\n".join(header) + "\n").encode("ascii"))
        if binary:
            out.write(vertex_table.tobytes())
            if len(faces):
                out.write(face_table.tobytes())
        else:
            # float32 -> float64 is exact, and 9 significant digits read back the same float32.
            columns = [vertex_table[name].astype(np.float64) for name in "xyz"]
            formats = ["%.9g"] * 3
            if colors is not None:
                columns += [colors[:, channel].astype(np.float64) for channel in range(3)]
                formats += ["%d"] * 3
            if num_vertices:
                np.savetxt(out, np.stack(columns, axis=1), fmt=formats)
            if len(faces):
                np.savetxt(out, np.column_stack([np.full(len(faces), 3), faces]), fmt="%d")
