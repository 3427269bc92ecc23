"""One entry point for every kind of scan a user can point at: ScanNet scene folders and PLY files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unscene3d.errors import InputError
from unscene3d.io.benchmark import read_gt_txt
from unscene3d.io.ply import read_ply
from unscene3d.io.scannet import (
    MESH_SUFFIX,
    align_geometry,
    find_scannet_mesh,
    load_scannet_scene,
    scene_axis_alignment,
)
from unscene3d.scene import Scene


def load_scan(
    path: str | Path, *, axis_align: bool = False, gt_path: str | Path | None = None, load_frames: bool = True
) -> Scene:
    """Load a scan from a ScanNet scene folder or a PLY file (mesh or point cloud).

    - A folder holding ``*_vh_clean_2.ply`` is read as a ScanNet scene (frames and ground truth
      included when present; see :func:`unscene3d.io.scannet.load_scannet_scene`).
    - Any other folder must hold exactly one ``.ply`` file, which is read as below.
    - A ``.ply`` file is read as a mesh, or a point cloud when it has no faces. Its scene name is the
      file stem without ``_vh_clean_2``. With ``axis_align``, a ``<name>.txt`` ScanNet meta file next
      to it supplies the alignment.

    ``gt_path`` (a benchmark ground-truth txt, one value per vertex) replaces any ground truth found
    with the scan.

    Raises:
        InputError: the path is missing or unsupported, or a file is malformed.
    """
    path = Path(path)
    is_scannet_folder, ply_path = _resolve(path)
    if is_scannet_folder:
        scene = load_scannet_scene(path, axis_align=axis_align, load_frames=load_frames, load_gt=gt_path is None)
    else:
        scene = _load_ply_scene(ply_path, axis_align)
    if gt_path is not None:
        scene.gt = read_gt_txt(gt_path, scene.num_vertices)
    return scene


def expand_scan_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The scans a user's arguments name: a PLY file or scan folder is one scan; any other folder
    contributes its ``.ply`` files and scan sub-folders, sorted.

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
    return found


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
