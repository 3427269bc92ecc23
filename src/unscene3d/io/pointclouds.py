"""Readers for the 3D formats people scan into, beside PLY: PCD, LAS/LAZ, OBJ/OFF/GLB/STL, NPY/NPZ.

Each returns a :class:`RawScan`: the file's points in file order (NaN rows of an organized cloud included),
optional colours, normals, faces and ground truth, and what the format says about the sensor and the
up axis. :func:`unscene3d.io.scan.load_scan` turns it into a :class:`~unscene3d.scene.Scene`.

Ground truth from per-point labels follows the benchmark convention ``label * 1000 + instance``:
an object is NYU40 label :data:`OBJECT_LABEL` (39, "otherfurniture": the catch-all class the
18-class benchmark counts as foreground); support surfaces and unlabelled points are 0 (void).

- PCD (PCL; ascii, binary, binary_compressed; parsed here rather than with pypcd4, which reads a truncated
  binary body as fewer points without a word; LZF from python-neo-lzf): fields ``x y z``, colour from ``rgb``/``rgba`` (packed),
  ``normal_x/y/z``. An integer ``label`` field is read by the OSD/mOSD convention: 0 unlabelled, 1-9 the
  table (void), n >= 10 object ``n // 10``. An organized cloud (HEIGHT > 1) is a depth camera's frame:
  the sensor is at the VIEWPOINT's origin and the up axis is -y (camera coordinates).
- LAS/LAZ (laspy, lazrs for LAZ): scaled coordinates, colour when the point format has it; z up.
- OBJ/OFF/GLB/GLTF/STL (trimesh, vertex order kept): meshes, or clouds when there are no faces;
  glTF is y up by its specification.
- NPY: an (N, 3) or (N, 6) array (x y z, then r g b in 0..255 or 0..1). NPZ: one such array, or
  ``coord`` (or ``points``/``xyz``) with optional ``color`` and ``normal``.
"""

from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.io.ply import colors_to_uint8

log = logging.getLogger(__name__)

# NYU40 "otherfurniture": counted by the benchmark's 18 classes, and not any specific one of them.
OBJECT_LABEL = 39
POINT_CLOUD_SUFFIXES = (".pcd", ".las", ".laz", ".npy", ".npz")
TRIMESH_SUFFIXES = (".obj", ".off", ".glb", ".gltf", ".stl")
_PCD_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8",
              ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("I", 8): "i8"}  # fmt: skip
_PCD_ENCODINGS = ("ascii", "binary", "binary_compressed")
# Fields read here, each one value per point; other fields (descriptors such as PCL's fpfh COUNT 33) are ignored.
_PCD_SCALAR_FIELDS = ("x", "y", "z", "rgb", "rgba", "normal_x", "normal_y", "normal_z", "label")
_DEFLATE_MAX_RATIO = 1032
_LAS_CHUNK_POINTS = 1_000_000
_NPZ_KEYS = {
    "points": ("coord", "points", "xyz"), "colors": ("color", "colors", "rgb"), "normals": ("normal", "normals")
}


@dataclass
class RawScan:
    """A file's contents, one row per point or vertex in file order (NaN rows allowed in clouds).

    ``up``: the format's up axis (``"z"``, ``"y"``, ``"-y"``) or None when it has no convention;
    ``up_reason`` says where it comes from. ``sensor``: (3,) sensor position when the format knows it.
    """

    points: np.ndarray
    faces: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    colors: np.ndarray | None = None
    normals: np.ndarray | None = None
    gt: np.ndarray | None = None
    sensor: np.ndarray | None = None
    up: str | None = None
    up_reason: str = ""


def read_point_file(path: Path) -> RawScan:
    """Read any file of :data:`POINT_CLOUD_SUFFIXES` or :data:`TRIMESH_SUFFIXES` by its suffix."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(path, "no such file" if not path.exists() else "not a file")
    _check_content_matches_suffix(path, suffix)
    if suffix == ".pcd":
        return read_pcd(path)
    if suffix in (".las", ".laz"):
        return read_las(path)
    if suffix in (".npy", ".npz"):
        return read_numpy(path)
    if suffix in TRIMESH_SUFFIXES:
        return read_trimesh(path)
    raise InputError(path, f"unsupported file type {suffix!r}")


# A file's first bytes, for the formats that have a signature: (bytes, format name, its suffixes).
_SIGNATURES = (
    (b"ply\n", "PLY", (".ply",)),
    (b"ply\r", "PLY", (".ply",)),
    (b"LASF", "LAS/LAZ", (".las", ".laz")),
    (b"\x93NUMPY", "NPY", (".npy",)),
    (b"PK\x03\x04", "NPZ (zip)", (".npz",)),
    (b"glTF", "GLB", (".glb",)),
)


def _check_content_matches_suffix(path: Path, suffix: str) -> None:
    """A file whose content is plainly another format than its suffix says (a PLY renamed .obj) is named as
    what it is, instead of failing in the wrong reader with a misleading message."""
    with open(path, "rb") as stream:
        start = stream.read(8)
    for signature, name, suffixes in _SIGNATURES:
        if start.startswith(signature) and suffix not in suffixes:
            raise InputError(path, f"the content is a {name} file, not {suffix[1:].upper()}: rename it to "
                                   f"{suffixes[0]}")


def mosd_ground_truth(labels: np.ndarray) -> np.ndarray:
    """OSD/mOSD point labels (0 none, 1-9 table, n >= 10 object n // 10) to ``label * 1000 + instance``."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.where(labels >= 10, OBJECT_LABEL * 1000 + labels // 10, 0)


# ---------------------------------------------------------------------------------------------------
# PCD


def _pcd_header(path: Path, data: bytes) -> tuple[dict[str, list[str]], int]:
    """Header fields by keyword, and the offset of the body."""
    header: dict[str, list[str]] = {}
    position = 0
    while "DATA" not in header:
        newline = data.find(b"\n", position)
        if newline < 0:
            raise InputError(path, "malformed PCD header: no DATA line")
        line = data[position:newline].decode("ascii", errors="replace").strip()
        position = newline + 1
        if not line or line.startswith("#"):
            continue
        keyword, *values = line.split()
        header[keyword.upper()] = values
    return header, position


def _pcd_layout(path: Path, header: dict[str, list[str]]) -> tuple[np.dtype, int, int, str]:
    """(record dtype with one column per field component, points, height, encoding), all checked."""
    for key in ("FIELDS", "SIZE", "TYPE", "WIDTH", "HEIGHT", "POINTS", "DATA"):
        if key not in header:
            raise InputError(path, f"malformed PCD header: no {key} line")
    fields, sizes, types = header["FIELDS"], header["SIZE"], header["TYPE"]
    counts = header.get("COUNT", ["1"] * len(fields))
    if not (len(fields) == len(sizes) == len(types) == len(counts)):
        raise InputError(path, f"malformed PCD header: {len(fields)} FIELDS but {len(sizes)} SIZE, "
                                f"{len(types)} TYPE and {len(counts)} COUNT entries")
    try:
        width, height, points = (int(header[key][0]) for key in ("WIDTH", "HEIGHT", "POINTS"))
        sizes, counts = [int(size) for size in sizes], [int(count) for count in counts]
    except (ValueError, IndexError):
        raise InputError(path, "malformed PCD header: a size, count, width, height or points value is not a number") \
            from None
    columns = []
    for position, (name, size, kind, count) in enumerate(zip(fields, sizes, types, counts)):
        name = f"_{position}" if name == "_" else name  # PCL names its padding fields "_", often more than one
        if (kind, size) not in _PCD_TYPES or count < 1:
            raise InputError(path, f"PCD field {name!r} has an unknown type {kind}{size} (count {count})")
        code = "<" + _PCD_TYPES[(kind, size)]
        columns += [(name, code)] if count == 1 else [(f"{name}_{i}", code) for i in range(count)]
    if len({name for name, _ in columns}) != len(columns):
        raise InputError(path, f"malformed PCD header: repeated field names in {' '.join(fields)}")
    missing = [axis for axis in "xyz" if axis not in fields]
    if missing:
        raise InputError(path, f"PCD has no {'/'.join(missing)} field (fields: {' '.join(fields)})")
    for name, count in zip(fields, counts):
        if name in _PCD_SCALAR_FIELDS and count != 1:
            raise InputError(path, f"PCD field {name!r} has COUNT {count}, but it holds one value per point "
                                   "(COUNT 1)")
    if points != width * height or points < 0:
        raise InputError(path, f"PCD header says {points} points but WIDTH x HEIGHT is {width} x {height}")
    encoding = header["DATA"][0].lower() if header["DATA"] else ""
    if encoding not in _PCD_ENCODINGS:
        raise InputError(path, f"PCD data encoding {encoding!r} is not one of {', '.join(_PCD_ENCODINGS)}")
    return np.dtype(columns), points, height, encoding


def _pcd_body(path: Path, body: bytes, dtype: np.dtype, points: int, encoding: str) -> np.ndarray:
    if encoding == "ascii":
        rows = body.decode("ascii", errors="replace").split("\n")
        rows = [row for row in rows if row.strip()]
        if len(rows) != points:
            raise InputError(path, f"PCD body has {len(rows)} rows, the header promises {points} (truncated?)")
        if not rows:
            return np.empty(0, dtype)  # no points: the scan loader says so
        try:
            table = np.array([row.split() for row in rows], dtype=np.float64)
        except ValueError:
            raise InputError(path, f"PCD ascii body has rows that are not {len(dtype)} numbers") from None
        if table.ndim != 2 or table.shape[1] != len(dtype):
            raise InputError(path, f"PCD ascii rows must hold {len(dtype)} values")
        records = np.empty(points, dtype)
        for column, name in enumerate(dtype.names):
            records[name] = _ascii_column(path, name, table[:, column], dtype[name])
        return records
    if encoding == "binary":
        _check_binary_size(path, len(body), points, dtype)
        return np.frombuffer(body, dtype, count=points)
    # binary_compressed: sizes, then LZF-compressed columns (all of field 1, then all of field 2, ...).
    import lzf

    if len(body) < 8:
        raise InputError(path, "PCD binary_compressed body is missing (truncated?)")
    compressed, raw = np.frombuffer(body[:8], "<u4").tolist()
    expected = points * dtype.itemsize
    if raw != expected or len(body) < 8 + compressed:
        raise InputError(path, f"PCD binary_compressed body is truncated or does not match the header "
                               f"({len(body) - 8} of {compressed} compressed bytes, {raw} of {expected} raw)")
    try:
        unpacked = lzf.decompress(body[8 : 8 + compressed], raw) if raw else b""
    except ValueError as error:
        raise InputError(path, f"PCD binary_compressed body does not decompress ({error})") from None
    if unpacked is None or len(unpacked) != raw:
        raise InputError(path, "PCD binary_compressed body does not decompress to the header's size")
    records = np.empty(points, dtype)
    offset = 0
    for name in dtype.names:
        column = dtype[name]
        records[name] = np.frombuffer(unpacked, column, count=points, offset=offset)
        offset += column.itemsize * points
    return records


def _ascii_column(path: Path, name: str, values: np.ndarray, kind: np.dtype) -> np.ndarray:
    """An ascii column (parsed as float64) in its declared type; a value the type cannot hold is an error,
    not an infinity or a wrapped integer."""
    finite = np.isfinite(values)
    if kind.kind == "f":
        too_large = finite & (np.abs(values) > np.finfo(kind).max)
        if too_large.any():
            row = int(np.flatnonzero(too_large)[0])
            raise InputError(path, f"PCD field {name!r} row {row + 1}: {values[row]:g} does not fit its type "
                                   f"{kind.name} (declare it F 8, or fix the value)")
        return values.astype(kind)
    info = np.iinfo(kind)
    bad = ~finite | (values != np.round(values)) | (values < info.min) | (values > info.max)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"PCD field {name!r} row {row + 1}: {values[row]:g} is not a whole number in "
                               f"{info.min}..{info.max} (its type {kind.name})")
    return values.astype(kind)


def _check_binary_size(path: Path, size: int, points: int, dtype: np.dtype) -> None:
    """A binary body holds exactly the header's records: more bytes mean the header describes another body."""
    needed = points * dtype.itemsize
    if size < needed:
        raise InputError(path, f"PCD body holds {size} bytes, {points} points need {needed} (truncated?)")
    if size == needed:
        return
    fields = " ".join(name for name in dtype.names)
    if points and size % points == 0:
        raise InputError(path, f"PCD body holds {size // points} bytes per point, but the header's fields ({fields}) "
                               f"take {dtype.itemsize}: the header lists fewer fields (or smaller sizes) than the "
                               "body holds")
    extra = size - needed
    raise InputError(path, f"PCD body holds {extra} byte{'s' * (extra > 1)} after the {points} points the header "
                           "describes (a wrong POINTS count, or data appended to the file?)")


def _packed_rgb(values: np.ndarray) -> np.ndarray:
    # PCL packs 8-bit r, g, b into one 32-bit word, stored as a float or an unsigned integer.
    word = np.ascontiguousarray(values).view(np.uint32) if values.dtype.itemsize == 4 else values.astype(np.uint32)
    return np.stack([(word >> 16) & 255, (word >> 8) & 255, word & 255], axis=1).astype(np.uint8)


def read_pcd(path: str | Path) -> RawScan:
    """Read a PCL ``.pcd`` file (see the module docstring)."""
    path = Path(path)
    data = path.read_bytes()
    header, offset = _pcd_header(path, data)
    dtype, points, height, encoding = _pcd_layout(path, header)
    records = _pcd_body(path, data[offset:], dtype, points, encoding)
    names = set(dtype.names)
    scan = RawScan(np.stack([records[axis].astype(np.float64) for axis in "xyz"], axis=1))
    for colour in ("rgb", "rgba"):
        if colour in names:
            scan.colors = _packed_rgb(records[colour])
            break
    if {"normal_x", "normal_y", "normal_z"} <= names:
        scan.normals = np.stack([records[f"normal_{a}"] for a in "xyz"], axis=1).astype(np.float32)
    if "label" in names and records["label"].dtype.kind in "iu":
        scan.gt = mosd_ground_truth(records["label"])
    ignored = names - {"x", "y", "z", "rgb", "rgba", "normal_x", "normal_y", "normal_z", "label"}
    if ignored:
        log.debug("%s: ignoring PCD fields %s", path, " ".join(sorted(ignored)))
    viewpoint = _pcd_viewpoint(path, header.get("VIEWPOINT", []))
    if height > 1:
        scan.sensor = np.array(viewpoint if len(viewpoint) == 3 else [0.0, 0.0, 0.0])
        scan.up, scan.up_reason = "-y", "an organized PCD is a depth camera's frame (camera coordinates, y down)"
    elif len(viewpoint) == 3 and any(viewpoint):
        scan.sensor = np.array(viewpoint)
    return scan


def _pcd_viewpoint(path: Path, values: list[str]) -> list[float]:
    """The VIEWPOINT's position (its first three numbers), which orients an organized cloud's normals."""
    try:
        position = [float(value) for value in values[:3]]
    except ValueError:
        position = [float("nan")]
    if not np.isfinite(position).all():
        raise InputError(path, f"malformed PCD header: VIEWPOINT {' '.join(values)} does not start with a position "
                               "(three finite numbers)")
    return position


# ---------------------------------------------------------------------------------------------------
# LAS / LAZ, meshes through trimesh, numpy arrays


def read_las(path: str | Path) -> RawScan:
    """Read a LAS or LAZ file with laspy (LAZ through the lazrs backend).

    The header's point count is checked against the file before any point is read (an uncompressed body
    must hold count x record size bytes), and points are read in chunks, so a header that lies costs no more
    memory than the points the file really holds.
    """
    import laspy

    path = Path(path)
    unreadable = (laspy.errors.LaspyException, ValueError, OSError, EOFError, RuntimeError)  # lazrs: RuntimeError
    chunks = []
    # laspy logs a failed read before raising; the error below says it once.
    with _logger_silenced("laspy"):
        try:
            reader = laspy.open(path)
        except unreadable as error:
            raise InputError(path, f"not a readable LAS/LAZ file: {_one_line(error)}") from None
        with reader:
            header = reader.header
            declared = int(header.point_count)
            if not header.are_points_compressed:
                _check_las_body(path, declared, int(header.offset_to_point_data), header.point_format.size)
            try:
                for chunk in reader.chunk_iterator(_LAS_CHUNK_POINTS):
                    chunks.append(chunk)
            except unreadable as error:
                raise InputError(path, f"the point data breaks off after {sum(map(len, chunks)):,} of the "
                                       f"{declared:,} points the header declares (truncated?): {_one_line(error)}") \
                    from None
    read = sum(len(chunk) for chunk in chunks)
    if read < declared:
        raise InputError(path, f"holds {read:,} of the {declared:,} points its header declares: the point data is "
                               "truncated")
    points = np.concatenate([np.stack([chunk.x, chunk.y, chunk.z], axis=1) for chunk in chunks]) if chunks \
        else np.zeros((0, 3))
    colors = None
    if {"red", "green", "blue"} <= set(header.point_format.dimension_names) and chunks:
        rgb = np.concatenate([np.stack([chunk.red, chunk.green, chunk.blue], axis=1) for chunk in chunks])
        # LAS colour is 16-bit by the specification, but many writers store 0..255.
        colors = (rgb >> 8 if rgb.max(initial=0) > 255 else rgb).astype(np.uint8)
    return RawScan(points.astype(np.float64), colors=colors, up="z", up_reason="LAS coordinates are z up")


@contextmanager
def _logger_silenced(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)  # its children (laspy.lasreader) inherit the level
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_las_body(path: Path, declared: int, offset: int, record_size: int) -> None:
    available = max(path.stat().st_size - offset, 0)
    needed = declared * record_size
    if available >= needed:
        return  # anything after the points (extended VLRs, waveforms) is allowed by the format
    if available == 0:
        raise InputError(path, f"the header declares {declared:,} points, but the file ends after its header: the "
                               "point data is missing")
    raise InputError(path, f"the header declares {declared:,} points ({needed:,} bytes), but the file holds "
                           f"{available:,} bytes of point data ({available // record_size:,} points): truncated")


def read_trimesh(path: str | Path) -> RawScan:
    """Read OBJ/OFF/GLB/GLTF/STL with trimesh, keeping the file's vertex order (no merging)."""
    import trimesh

    path = Path(path)
    try:
        loaded = trimesh.load(path, process=False)
    except Exception as error:  # trimesh raises many types for malformed files; all mean "unreadable"
        raise InputError(path, f"not a readable {path.suffix[1:].upper()} file: {_one_line(error)}") from None
    if isinstance(loaded, trimesh.Scene):
        parts = list(loaded.dump()) if loaded.geometry else []
        meshes = [part for part in parts if isinstance(part, trimesh.Trimesh)]
        clouds = [part for part in parts if isinstance(part, trimesh.PointCloud)]
        if meshes:
            loaded = trimesh.util.concatenate(meshes) if len(meshes) > 1 else meshes[0]
        elif clouds:
            loaded = trimesh.PointCloud(np.vstack([cloud.vertices for cloud in clouds]))
        else:
            raise InputError(path, f"the file holds no geometry (no vertices that the {path.suffix[1:].upper()} "
                                   "reader recognises)")
    points = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    colors = _trimesh_colors(loaded, len(points))
    gltf = path.suffix.lower() in (".glb", ".gltf")
    return RawScan(points, faces=faces, colors=colors, up="y" if gltf else None,
                   up_reason="glTF is y up by its specification" if gltf else "")


def _trimesh_colors(geometry: object, count: int) -> np.ndarray | None:
    colors = getattr(geometry, "colors", None)  # a trimesh PointCloud
    visual = getattr(geometry, "visual", None)
    if visual is not None and getattr(visual, "kind", None) == "texture":
        try:
            visual = visual.to_color()
        except (ValueError, IndexError, AttributeError):
            return None
    if visual is not None and getattr(visual, "kind", None) == "vertex":
        colors = visual.vertex_colors
    if colors is None or len(colors) != count:
        return None
    return np.asarray(colors)[:, :3].astype(np.uint8)


def read_numpy(path: str | Path) -> RawScan:
    """Read an ``.npy`` (N x 3 or N x 6) or ``.npz`` point array (module docstring)."""
    path = Path(path)
    try:
        check_numpy_headers(path)
        with open(path, "rb") as stream:  # np.load leaves its own handle open when a zip is corrupt
            loaded = np.load(stream, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                arrays = {"": loaded}
            else:
                with loaded:
                    arrays = {key: np.asarray(loaded[key]) for key in loaded.files}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"not a readable numpy file: {_one_line(error)}") from None
    if not arrays:
        raise InputError(path, "the NPZ file holds no arrays")
    if len(arrays) == 1:
        return _table_scan(path, next(iter(arrays.values())))
    found = {role: next((arrays[key] for key in keys if key in arrays), None) for role, keys in _NPZ_KEYS.items()}
    if found["points"] is None:
        raise InputError(path, f"NPZ has no point array (one of {', '.join(_NPZ_KEYS['points'])}); "
                               f"keys: {', '.join(arrays)}")
    scan = _table_scan(path, found["points"])
    if found["colors"] is not None:
        scan.colors = colour_rows(path, found["colors"], len(scan.points))
    if found["normals"] is not None:
        scan.normals = float_rows(path, found["normals"], len(scan.points), "normals")
    return scan


def check_numpy_headers(path: Path) -> None:
    """Each array's header against the bytes the file holds for it, before numpy allocates what the header
    claims (a corrupt header asking for 10^12 points must not become a MemoryError)."""
    if path.suffix.lower() == ".npz":
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.filename.endswith(".npy"):
                    # The directory's size can lie too; a stored member holds its compressed bytes, and deflate
                    # expands at most about 1032-fold.
                    stored = member.compress_type == zipfile.ZIP_STORED
                    size = min(member.file_size, member.compress_size * (1 if stored else _DEFLATE_MAX_RATIO))
                    with archive.open(member) as stream:
                        _check_npy_header(path, stream, size, f" ({member.filename})")
        return
    with open(path, "rb") as stream:
        _check_npy_header(path, stream, path.stat().st_size, "")


def _check_npy_header(path: Path, stream, size: int, where: str) -> None:
    fmt = np.lib.format
    version = fmt.read_magic(stream)
    # Version 3 differs from 2 only in its header's text encoding (UTF-8), which numbers never need.
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read_header(stream)
    if dtype.hasobject:
        raise InputError(path, f"the array{where} holds Python objects, not numbers")
    needed = math.prod(shape) * dtype.itemsize
    available = size - stream.tell()
    if needed > available:
        raise InputError(path, f"the header{where} declares a {dtype} array of shape {shape} ({needed:,} bytes), but "
                               f"the file holds {max(available, 0):,} bytes of data (truncated, or a corrupt header)")


def _table_scan(path: Path, table: np.ndarray) -> RawScan:
    if np.iscomplexobj(table):
        raise InputError(path, f"holds complex numbers ({table.dtype}); coordinates and colours must be real")
    if table.ndim != 2 or table.shape[1] not in (3, 6) or not np.issubdtype(table.dtype, np.number):
        raise InputError(path, f"expected an (N, 3) or (N, 6) numeric array (x y z [r g b]), got {table.dtype} "
                               f"{table.shape}")
    scan = RawScan(table[:, :3].astype(np.float64))
    if table.shape[1] == 6:
        scan.colors = colour_rows(path, table[:, 3:], len(table))
    return scan


def float_rows(path: Path, values: np.ndarray, count: int, what: str) -> np.ndarray:
    values = np.asarray(values)
    if np.iscomplexobj(values):
        raise InputError(path, f"{what} hold complex numbers ({values.dtype}); they must be real")
    if values.shape != (count, 3) or not np.issubdtype(values.dtype, np.number):
        raise InputError(path, f"{what} must be a numeric ({count}, 3) array, got {values.dtype} {values.shape}")
    return values.astype(np.float32)


def colour_rows(path: Path, values: np.ndarray, count: int) -> np.ndarray:
    values = float_rows(path, values, count, "colours").astype(np.float64)
    return colors_to_uint8(path, [values[:, channel] for channel in range(3)])


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
