"""One entry point for every kind of scan a user can point at: ScanNet scene folders and PLY files."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unscene3d.errors import InputError, about, display_path
from unscene3d.io.benchmark import read_gt_txt, scene_name_problem
from unscene3d.io.ply import read_ply
from unscene3d.io.scannet import (
    MESH_SUFFIX,
    align_geometry,
    find_scannet_mesh,
    load_scannet_scene,
    scene_axis_alignment,
)
from unscene3d.scene import Scene

# Every stage computes in float32 (the Segmentator's arithmetic, the networks) and on centimetre voxel
# grids; beyond this magnitude products of coordinates overflow float32 and voxel indices stop fitting.
# It leaves room for any scan in metres or millimetres.
MAX_COORDINATE = 1e6


def load_scan(
    path: str | Path,
    *,
    axis_align: bool = False,
    gt_path: str | Path | None = None,
    load_frames: bool = True,
    load_gt: bool = False,
) -> Scene:
    """Load a scan from a ScanNet scene folder or a PLY file (mesh or point cloud).

    - A folder holding ``*_vh_clean_2.ply`` is read as a ScanNet scene (frames and ground truth
      included when present; see :func:`unscene3d.io.scannet.load_scannet_scene`).
    - Any other folder must hold exactly one ``.ply`` file, which is read as below.
    - A ``.ply`` file is read as a mesh, or a point cloud when it has no faces. Its scene name is the
      file stem without ``_vh_clean_2``. With ``axis_align``, a ``<name>.txt`` ScanNet meta file next
      to it supplies the alignment.

    A ScanNet folder's own ground truth is read only with ``load_gt`` (the stages do not use it, and
    should not fail on it); ``gt_path`` (a benchmark ground-truth txt, one value per vertex) gives
    ground truth for any scan.

    Raises:
        InputError: the path is missing or unsupported, a file is malformed, the scan has no vertices,
            or a coordinate lies beyond :data:`MAX_COORDINATE`.
    """
    path = Path(path)
    is_scannet_folder, ply_path = _resolve(path)
    if is_scannet_folder:
        scene = load_scannet_scene(
            path, axis_align=axis_align, load_frames=load_frames, load_gt=load_gt and gt_path is None
        )
    else:
        scene = _load_ply_scene(ply_path, axis_align)
    _check_geometry(ply_path, scene)
    if gt_path is not None:
        scene.gt = read_gt_txt(gt_path, scene.num_vertices)
    return scene


def _check_geometry(ply_path: Path, scene: Scene) -> None:
    if scene.num_vertices == 0:
        raise InputError(ply_path, "the scan has no vertices")
    largest = np.abs(scene.vertices).max(axis=0)
    if largest.max() > MAX_COORDINATE:
        axis = int(largest.argmax())
        raise InputError(
            ply_path,
            f"|{'xyz'[axis]}| reaches {largest[axis]:.3g}, beyond the supported {MAX_COORDINATE:.0e} (stages compute "
            "in float32 on centimetre voxels): an outlier vertex, or units far too small?",
        )


def expand_scan_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The scans a user's arguments name: a PLY file or scan folder is one scan; any other folder
    contributes its ``.ply`` files and scan sub-folders, sorted. A scan named twice (e.g. by its folder
    and by itself) counts once.

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
            if (child.is_file() and child.suffix.lower() == ".ply") or (child.is_dir() and _is_scan(child))
        ]
        if not children:
            raise InputError(path, "no scans found (expected .ply files or ScanNet scene folders)")
        found.extend(children)
    unique: dict[str, Path] = {}
    for path in found:
        # One mesh file, one scan; links are not followed: two scene folders may link to one mesh.
        unique.setdefault(os.path.abspath(_resolve(path)[1]), path)
    return list(unique.values())


def _is_scan(path: Path) -> bool:
    try:
        _resolve(path)
    except InputError:
        return False
    return True


def scan_name(path: str | Path) -> str:
    """The scene name :func:`load_scan` gives this scan, found without reading the scan."""
    _, ply_path = _resolve(Path(path))
    return _ply_scene_name(ply_path)


def mesh_file(path: str | Path) -> Path:
    """The PLY file :func:`load_scan` reads for this scan (the file itself, or the one in its folder)."""
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

    ``check(scene)`` adds a stage's own requirement (e.g. faces); its errors are blamed on the scan.
    Up to ``keep_vertices`` vertices of scans stay in memory from the check; scans beyond that are read
    again when their turn comes, so a long list of scans does not have to fit in memory.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        check: Callable[[Scene], None] | None = None,
        keep_vertices: int = 5_000_000,
        **load_options: bool,
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


def _resolve(path: Path) -> tuple[bool, Path]:
    """(whether it is a ScanNet scene folder, its mesh file), by the rules of :func:`load_scan`."""
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        scannet_mesh = find_scannet_mesh(path)
        return (True, scannet_mesh) if scannet_mesh is not None else (False, _single_ply(path))
    if path.suffix.lower() == ".ply":
        return False, path
    raise InputError(path, "unsupported scan: expected a .ply file or a ScanNet scene folder")


def _ply_scene_name(ply_path: Path) -> str:
    return ply_path.stem.removesuffix("_vh_clean_2")


def _single_ply(folder: Path) -> Path:
    plys = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".ply" and p.is_file())
    if len(plys) != 1:
        raise InputError(
            folder,
            f"not a scan folder: no *{MESH_SUFFIX} and {len(plys)} .ply files (expected exactly one)",
        )
    return plys[0]


def _load_ply_scene(ply_path: Path, axis_align: bool) -> Scene:
    mesh = read_ply(ply_path)
    name = _ply_scene_name(ply_path)
    vertices, normals = mesh.vertices, mesh.normals
    if axis_align:
        alignment = scene_axis_alignment(ply_path.with_name(f"{name}.txt"))
        if alignment is not None:
            vertices, normals = align_geometry(vertices, normals, alignment)
    return Scene(
        name=name,
        vertices=vertices,
        faces=mesh.faces,
        colors=mesh.colors,
        normals=normals,
        source=ply_path,
    )
