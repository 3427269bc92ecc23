"""One entry point for every kind of scan a user can point at: meshes and point clouds in the common
formats, ScanNet scene folders, Pointcept scene folders and S3DIS room folders.

Every scan becomes a :class:`~unscene3d.scene.Scene` in the project's frame: z up, metres. Points
without coordinates (NaN rows of an organized depth frame) are left out of the scene's vertices but
remembered (``Scene.input_index``), so outputs are written back per input point, in file order.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unscene3d.errors import InputError, about, display_path
from unscene3d.io.benchmark import read_gt_txt, scene_name_problem
from unscene3d.io.datasets import (
    is_pointcept_folder,
    read_pointcept_folder,
    read_s3dis_room,
    s3dis_room_file,
    s3dis_scene_name,
)
from unscene3d.io.ply import read_ply
from unscene3d.io.pointclouds import POINT_CLOUD_SUFFIXES, TRIMESH_SUFFIXES, RawScan, read_point_file
from unscene3d.io.scannet import (
    MESH_SUFFIX,
    align_geometry,
    find_scannet_mesh,
    load_scannet_scene,
    scene_axis_alignment,
)
from unscene3d.profile import ProfileRequest, ScanProfile, infer_profile
from unscene3d.scene import Scene

log = logging.getLogger(__name__)

SCAN_SUFFIXES = (".ply",) + POINT_CLOUD_SUFFIXES + TRIMESH_SUFFIXES
# Every stage computes in float32 (the Segmentator's arithmetic, the networks) and on centimetre voxel
# grids; beyond this magnitude products of coordinates overflow float32 and voxel indices stop fitting.
# It leaves room for any scan in metres or millimetres.
MAX_COORDINATE = 1e6
_FACE_CHUNK = 4096


def load_scan(
    path: str | Path,
    *,
    axis_align: bool = False,
    gt_path: str | Path | None = None,
    load_frames: bool = True,
    up: str | None = None,
    scale: float | None = None,
    kind: str = "auto",
    load_gt: bool = False,
) -> Scene:
    """Load a scan (mesh or point cloud) from a file or a scan folder, in the working frame of its profile.

    - A folder holding ``*_vh_clean_2.ply`` is read as a ScanNet scene (frames, and with ``load_gt`` ground
      truth, when present; see :func:`unscene3d.io.scannet.load_scannet_scene`).
    - A folder with ``coord.npy`` is a Pointcept scene, one with ``<name>.txt`` and ``Annotations/`` an S3DIS
      room (:mod:`unscene3d.io.datasets`); their annotations become ground truth.
    - Any other folder must hold exactly one scan file, which is read as below.
    - A file by its suffix: ``.ply`` (mesh or point cloud; the scene name drops ``_vh_clean_2``; with
      ``axis_align`` a ``<name>.txt`` ScanNet meta file next to it supplies the alignment), and the formats of
      :mod:`unscene3d.io.pointclouds` (PCD, LAS/LAZ, OBJ/OFF/GLB/GLTF/STL, NPY/NPZ).

    Units, up axis, kind and colour are inferred (:func:`unscene3d.profile.infer_profile`; ``up`` names the
    axis, ``scale`` the factor to metres, ``kind`` room or tabletop instead), logged in one line, kept in
    ``Scene.profile``, and the scan is turned z up into room metres. A ScanNet folder's own ground truth is
    read only with ``load_gt`` (the stages do not use it, and should not fail on it); ``gt_path`` (a benchmark
    ground-truth txt, one value per input point) gives ground truth for any scan. Annotations inside a
    point-cloud file or dataset folder are read with it.

    Raises:
        InputError: the path is missing or unsupported, a file is malformed, the scan has no vertices, its
            units cannot be recognised, a coordinate lies beyond :data:`MAX_COORDINATE`, or a point cloud
            holds fewer than two distinct points with coordinates.
    """
    path = Path(path)
    request = ProfileRequest(up=up, scale=scale, kind=kind)
    source_kind, target = _resolve(path)
    if source_kind == "scannet":
        scene = load_scannet_scene(
            path, axis_align=axis_align, load_frames=load_frames, load_gt=load_gt and gt_path is None
        )
        format_up, format_reason, description = "z", "ScanNet scenes are z up", f"mesh of {scene.num_vertices} vertices"
    else:
        raw = _read_raw(source_kind, target, axis_align)
        scene, description = _scene_from_raw(raw, _scene_name(source_kind, target), target)
        format_up, format_reason = raw.up, raw.up_reason
    _check_geometry(target, scene)  # in the file's own axes, before anything is inferred from them
    profile = infer_profile(scene.vertices, scene.faces, normals=scene.normals, colors=scene.colors,
                            format_up=format_up, format_up_reason=format_reason, request=request, source=target)
    scene = _reframe(scene, profile)
    if not profile.has_colour:
        scene.colors = None
    log.info("%s: %s; %s%s", target, description, profile.describe(),
             "; sensor position known (normals face it)" if scene.sensor is not None else "")
    _check_geometry(target, scene)
    if gt_path is not None:
        gt = read_gt_txt(gt_path, scene.input_size)
        scene.gt = scene.from_input(gt)
    return scene


def _check_geometry(source: Path, scene: Scene) -> None:
    if scene.num_vertices == 0:
        raise InputError(source, "the scan has no vertices")
    largest = np.abs(scene.vertices).max(axis=0)
    if largest.max() > MAX_COORDINATE:
        axis = int(largest.argmax())
        raise InputError(
            source,
            f"|{'xyz'[axis]}| reaches {largest[axis]:.3g}, beyond the supported {MAX_COORDINATE:.0e} (stages compute "
            "in float32 on centimetre voxels): an outlier vertex, or units far too small?",
        )
    if scene.has_faces:
        _check_surface(source, scene.vertices, scene.faces)


def _check_surface(source: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """A mesh must have some surface: with every face of zero area there are no normals, and the
    oversegmentation's edge weights would be meaningless (1,600 copies of one vertex gave 17 "segments")."""
    if not np.ptp(vertices, axis=0).any():
        raise InputError(source, f"all {len(vertices)} vertices are at the same position: the mesh has no shape")
    for start in range(0, len(faces), _FACE_CHUNK):  # a real mesh answers in its first chunk
        corners = vertices[faces[start : start + _FACE_CHUNK]].astype(np.float32)  # the oversegmentation's float32
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        if ((normals * normals).sum(axis=1) > 0).any():  # the length the oversegmentation computes
            return
    raise InputError(source, f"none of its {len(faces)} faces has an area (collinear or repeated vertices): the "
                             "mesh has no surface")


def expand_scan_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The scans a user's arguments name: a scan file or scan folder is one scan; any other folder
    contributes its scan files (:data:`SCAN_SUFFIXES`) and scan sub-folders, sorted. A scan named twice
    (e.g. by its folder and by itself) counts once.

    Raises:
        InputError: a path is missing, or a folder holds no scans.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(path, "no such file or folder")
        if path.is_file() or _is_scan(path):
            found.append(path)
            continue
        children = [
            child
            for child in sorted(path.iterdir())
            if (child.is_file() and child.suffix.lower() in SCAN_SUFFIXES) or (child.is_dir() and _is_scan(child))
        ]
        if not children:
            raise InputError(path, "no scans found (expected scan files or scan folders)")
        found.extend(children)
    unique: dict[str, Path] = {}
    for path in found:
        # One scan file, one scan; links are not followed: two scene folders may link to one mesh.
        unique.setdefault(os.path.abspath(_resolve(path)[1]), path)
    return list(unique.values())


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as ``--shard 2/8``): every ``count``-th scan of the scans sorted
    by scene name (then path), from the ``index``-th on. Each shard finds its own scans from the same
    arguments, so the shards of a job array need no coordinator, and together they take every scan once."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` with 1 <= I <= N.

        Raises:
            InputError: anything else (one line naming ``--shard``).
        """
        match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text)
        if match is None or not 1 <= int(match[1]) <= int(match[2]):
            raise InputError(None, f"--shard: expected I/N, shard I of N with 1 <= I <= N (e.g. 2/8), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    def select(self, paths: Sequence[Path]) -> list[Path]:
        """This shard's scans of ``paths`` (all scans of the run), in sorted order."""
        ordered = sorted(paths, key=lambda path: (scan_name(path), str(path)))
        return ordered[self.index - 1 :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def scan_name(path: str | Path) -> str:
    """The scene name :func:`load_scan` gives this scan, found without reading the scan."""
    return _scene_name(*_resolve(Path(path)))


def mesh_file(path: str | Path) -> Path:
    """The file (or dataset folder) :func:`load_scan` reads for this scan."""
    return _resolve(Path(path))[1]


def scan_names(paths: Sequence[Path]) -> list[str]:
    """The scene names of scans whose outputs are named after them, found without reading the scans.

    Raises:
        InputError: a name cannot name output files (see :func:`scene_name_problem`), or two scans
            share a name (their outputs would overwrite each other).
    """
    names = [scan_name(path) for path in paths]
    for path, name in zip(paths, names):
        problem = scene_name_problem(name)
        if problem is not None:
            raise InputError(path, f"{problem}; rename the file (outputs are named after the scene)")
    check_distinct(paths, names, lambda name, other: f"has the scene name {name!r} of {display_path(other)} too; "
                                                     "their outputs would overwrite each other")
    return names


def check_distinct(scans: Sequence[Path], keys: Sequence[Hashable], clash: Callable[[Any, Path], str]) -> None:
    """Raise for the first scan whose key (e.g. an output file) an earlier scan has too.

    ``clash(key, earlier_scan)`` words the problem.
    """
    first_with: dict[Hashable, Path] = {}
    for scan, key in zip(scans, keys):
        if key in first_with:
            raise InputError(scan, clash(key, first_with[key]))
        first_with[key] = scan


class CheckedScans:
    """Scans read and validated up front, before any compute, then handed out one by one.

    ``check(scene)`` adds a stage's own requirement (e.g. colours); its errors are blamed on the scan.
    Up to ``keep_vertices`` vertices of scans stay in memory from the check; scans beyond that are read
    again when their turn comes, so a long list of scans does not have to fit in memory.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        check: Callable[[Scene], None] | None = None,
        keep_vertices: int = 5_000_000,
        **load_options: Any,
    ) -> None:
        self.paths = list(paths)
        self._load_options = load_options
        self._kept: dict[int, Scene] = {}
        total = 0
        for index, path in enumerate(self.paths):
            scene = load_scan(path, **load_options)
            if check is not None:
                with about(path):
                    check(scene)
            total += scene.num_vertices
            if total <= keep_vertices:
                self._kept[index] = scene

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Scene]:
        for index, path in enumerate(self.paths):
            scene = self._kept.pop(index, None)
            yield scene if scene is not None else load_scan(path, **self._load_options)


def _is_scan(path: Path) -> bool:
    try:
        _resolve(path)
    except InputError:
        return False
    return True


def _resolve(path: Path) -> tuple[str, Path]:
    """(kind, what to read) by the rules of :func:`load_scan`; kind is scannet, pointcept, s3dis or file."""
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        scannet_mesh = find_scannet_mesh(path)
        if scannet_mesh is not None:
            return "scannet", scannet_mesh
        if is_pointcept_folder(path):
            return "pointcept", path
        if s3dis_room_file(path) is not None:
            return "s3dis", path
        return "file", _single_scan_file(path)
    if path.suffix.lower() in SCAN_SUFFIXES:
        return "file", path
    raise InputError(
        path, f"unsupported scan: expected a scan file ({' '.join(SCAN_SUFFIXES)}) or a scan folder"
    )


def _scene_name(kind: str, target: Path) -> str:
    if kind == "pointcept":
        return target.name
    if kind == "s3dis":
        return s3dis_scene_name(target)
    return target.stem.removesuffix("_vh_clean_2")


def _single_scan_file(folder: Path) -> Path:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SCAN_SUFFIXES and p.is_file())
    if len(files) != 1:
        raise InputError(
            folder,
            f"not a scan folder: no *{MESH_SUFFIX}, coord.npy or S3DIS room, and {len(files)} scan files "
            "(expected exactly one)",
        )
    return files[0]


def _read_raw(kind: str, target: Path, axis_align: bool) -> RawScan:
    if kind == "pointcept":
        return read_pointcept_folder(target)
    if kind == "s3dis":
        return read_s3dis_room(target)
    if target.suffix.lower() != ".ply":
        return read_point_file(target)
    mesh = read_ply(target)
    raw = RawScan(mesh.vertices, faces=mesh.faces, colors=mesh.colors, normals=mesh.normals)
    if axis_align:
        alignment = scene_axis_alignment(target.with_name(f"{_scene_name('file', target)}.txt"))
        if alignment is not None:
            raw.points, raw.normals = align_geometry(raw.points, raw.normals, alignment)
    return raw


def _scene_from_raw(raw: RawScan, name: str, source: Path) -> tuple[Scene, str]:
    """The scene in file coordinates, and a few words on what was read."""
    count = len(raw.points)
    keep = np.isfinite(raw.points).all(axis=1)
    is_cloud = len(raw.faces) == 0
    if not is_cloud and not keep.all():
        raise InputError(source, f"{int((~keep).sum())} mesh vertices have NaN or infinite coordinates")
    if is_cloud and count:  # an empty scan is reported by _check_geometry
        from unscene3d.normals import check_cloud  # numba: a mesh's commands need not start it

        if not keep.any():
            raise InputError(source, f"none of the {count} points has coordinates (all NaN or infinite)")
        check_cloud(raw.points[keep], source)

    def kept(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None or keep.all() else values[keep]

    scene = Scene(
        name=name,
        vertices=raw.points if keep.all() else raw.points[keep],
        faces=raw.faces,
        colors=raw.colors if keep.all() else kept(raw.colors),
        normals=raw.normals if keep.all() else kept(raw.normals),
        gt=raw.gt if keep.all() else kept(raw.gt),
        source=source,
        sensor=raw.sensor,
        input_index=None if keep.all() else np.flatnonzero(keep),
        num_input_points=None if keep.all() else count,
    )
    dropped = f", {count - scene.num_vertices} without coordinates left out" if scene.input_index is not None else ""
    return scene, f"{'point cloud' if is_cloud else 'mesh'} of {count} {'points' if is_cloud else 'vertices'}{dropped}"


def _reframe(scene: Scene, profile: ScanProfile) -> Scene:
    """The scene turned into the working frame of ``profile`` (in place; returned)."""
    scene.profile = profile
    if profile.is_identity():
        return scene
    rotation = profile.rotation
    transform = rotation * profile.working_factor
    scene.vertices = scene.vertices @ transform.T
    if scene.normals is not None:
        scene.normals = (scene.normals @ rotation.T).astype(np.float32)
    if scene.sensor is not None:
        scene.sensor = scene.sensor @ transform.T
    for frame in scene.frames:  # camera-to-world stays rigid: the rotation turns, the position also scales
        frame.pose = frame.pose.copy()
        frame.pose[:3, :3] = rotation @ frame.pose[:3, :3]
        frame.pose[:3, 3] = transform @ frame.pose[:3, 3]
    return scene
