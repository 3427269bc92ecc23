"""The ``oversegment`` command's library call: many meshes into ScanNet ``.segs.json`` files in one process.

One process for many meshes pays the start-up (imports, loading numba's compiled kernels) once. With
one mesh the output is the given file; with several it is a folder of
``<mesh file stem>.<kThresh, 6 decimals>.segs.json``, the names the ScanNet Segmentator gives
(``scene0000_00_vh_clean_2.0.010000.segs.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from unscene3d.errors import InputError, about, display_path
from unscene3d.io.scan import CheckedScans, check_distinct, mesh_file
from unscene3d.io.segments import write_segs_json
from unscene3d.oversegment import DEFAULT_PARAMS, VARIANTS, oversegment
from unscene3d.scene import Scene


def segs_output_paths(scans: Sequence[Path], output: Path, *, variant: str, k_thresh: float | None) -> list[Path]:
    """Where each scan's segments go: ``output`` itself for one scan (unless it is a folder), else
    Segmentator-named files in the folder ``output``.

    Raises:
        InputError: two scans would write the same file.
    """
    if len(scans) == 1 and not output.is_dir():
        return [output]
    k = DEFAULT_PARAMS[variant][0] if k_thresh is None else k_thresh
    paths = [output / f"{mesh_file(scan).stem}.{k:.6f}.segs.json" for scan in scans]
    check_distinct(scans, paths, lambda path, other: f"would write {display_path(path)} as {display_path(other)} "
                                                     "does: meshes with the same file name need separate runs")
    return paths


def require_mesh(scene: Scene) -> None:
    """Oversegmentation (and every stage built on its segments) needs faces."""
    if not scene.has_faces:
        raise InputError(None, "has no faces: oversegmentation needs a triangle mesh, not a point cloud")


def mesh_requirements(variant: str) -> Callable[[Scene], None]:
    """The check :class:`CheckedScans` runs on each scan before any is oversegmented."""
    if variant not in VARIANTS:
        raise InputError(None, f"unknown oversegmentation variant {variant!r}; use one of {VARIANTS}")

    def check(scene: Scene) -> None:
        require_mesh(scene)
        if variant == "unscene3d" and scene.colors is None:
            raise InputError(None, "has no vertex colours, which the unscene3d variant weights edges by")

    return check


def oversegment_scans(
    scans: CheckedScans, outputs: Sequence[Path], *, variant: str, k_thresh: float | None, min_verts: int | None
) -> list[int]:
    """Oversegment each scan into its output file; return the segment count of each."""
    counts = []
    for path, scene, output in zip(scans.paths, scans, outputs):
        with about(path):
            segmentation = oversegment(
                scene.vertices, scene.faces, scene.colors, variant=variant, k_thresh=k_thresh, min_verts=min_verts
            )
        write_segs_json(output, segmentation.seg_ids, mesh_file(path).stem, segmentation.params)
        counts.append(segmentation.num_segments)
    return counts
