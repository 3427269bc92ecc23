"""The ``oversegment`` command's library call: many scans into ScanNet ``.segs.json`` files in one process.

One process for many scans pays the start-up (imports, loading numba's compiled kernels) once. With
one scan the output is the given file; with several it is a folder of
``<scan file stem>.<kThresh, 6 decimals>.segs.json``, the names the ScanNet Segmentator gives
(``scene0000_00_vh_clean_2.0.010000.segs.json``). Beside each goes the scan coloured by segment
(``.segs.ply``). Meshes are segmented exactly like the Segmentator, point clouds on their neighbour
graph (:func:`~unscene3d.oversegment_points.oversegment_scene`); segment ids are written per input point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from unscene3d.errors import InputError, about, display_path
from unscene3d.io.scan import CheckedScans, check_distinct, mesh_file, scan_name
from unscene3d.io.segments import write_segs_json
from unscene3d.oversegment import DEFAULT_PARAMS, VARIANTS, Segmentation, oversegment
from unscene3d.scene import Scene
from unscene3d.visualize import write_labels_ply


def segs_id(scan: Path) -> str:
    """The ``sceneId`` of a scan's segments: its file's stem (a ScanNet folder's mesh), or a dataset folder's
    scene name."""
    target = mesh_file(scan)
    return target.stem if target.is_file() else scan_name(scan)


def segs_output_paths(scans: Sequence[Path], output: Path, *, variant: str, k_thresh: float | None) -> list[Path]:
    """Where each scan's segments go: ``output`` itself for one scan (unless it is a folder), else
    Segmentator-named files in the folder ``output``.

    Raises:
        InputError: two scans would write the same file.
    """
    if len(scans) == 1 and not output.is_dir():
        return [output]
    k = DEFAULT_PARAMS[variant][0] if k_thresh is None else k_thresh
    paths = [output / f"{segs_id(scan)}.{k:.6f}.segs.json" for scan in scans]
    check_distinct(scans, paths, lambda path, other: f"would write {display_path(path)} as {display_path(other)} "
                                                     "does: scans with the same file name need separate runs")
    return paths


def coloured_path(segs_json: Path) -> Path:
    """The scan coloured by segment, beside its ``.segs.json``: ``OUT.segs.ply``."""
    return segs_json.with_name(segs_json.name.removesuffix(".json").removesuffix(".segs") + ".segs.ply")


def scan_requirements(variant: str) -> Callable[[Scene], None]:
    """The check :class:`CheckedScans` runs on each scan before any is oversegmented."""
    if variant not in VARIANTS:
        raise InputError(None, f"unknown oversegmentation variant {variant!r}; use one of {VARIANTS}")

    def check(scene: Scene) -> None:
        if variant == "unscene3d" and scene.colors is None:
            raise InputError(None, "has no vertex colours, which the unscene3d variant weights edges by")

    return check


def oversegment_scans(
    scans: CheckedScans,
    outputs: Sequence[Path],
    *,
    variant: str,
    k_thresh: float | None,
    min_verts: int | None,
    voxel_size: float | None = None,
) -> list[int]:
    """Oversegment each scan into its output file (and the coloured PLY beside it); return the segment
    count of each. ``voxel_size`` is the point clouds' neighbour-graph voxel in metres of the scan (None: 2 cm of
    the working frame; a tabletop's is scaled, see :mod:`unscene3d.profile`)."""
    counts = []
    for path, scene, output in zip(scans.paths, scans, outputs):
        with about(path):
            segmentation = _segment(scene, variant=variant, k_thresh=k_thresh, min_verts=min_verts,
                                    voxel_size=None if voxel_size is None else voxel_size / scene.length_scale)
        write_labels_ply(coloured_path(output), scene, segmentation.labels)
        # A segment's id is the index of one of its vertices: in the file, that vertex has its input index.
        seg_ids = segmentation.seg_ids if scene.input_index is None else scene.input_index[segmentation.seg_ids]
        write_segs_json(output, scene.to_input(seg_ids, fill=-1), segs_id(path), segmentation.params)
        counts.append(segmentation.num_segments)
    return counts


def _segment(scene: Scene, *, variant: str, k_thresh: float | None, min_verts: int | None,
             voxel_size: float | None) -> Segmentation:
    """:func:`~unscene3d.oversegment_points.oversegment_scene`, with the point-cloud module imported only for
    clouds: it needs numba, whose start-up is most of a one-mesh run when the C kernels spare the mesh it."""
    if scene.has_faces:
        return oversegment(scene.vertices, scene.faces, scene.colors if variant == "unscene3d" else None,
                           variant=variant, k_thresh=k_thresh, min_verts=min_verts)
    from unscene3d.oversegment_points import oversegment_scene

    return oversegment_scene(scene, variant=variant, k_thresh=k_thresh, min_verts=min_verts, voxel_size=voxel_size)
