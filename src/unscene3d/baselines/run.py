"""The ``baseline`` command's library call: a learning-free baseline over many scans, resumable."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from unscene3d.errors import InputError, about
from unscene3d.io.benchmark import export_predictions
from unscene3d.io.scan import CheckedScans, expand_scan_paths, scan_names
from unscene3d.progress import progress_log
from unscene3d.visualize import INSTANCES_PLY_SUFFIX, write_instances_ply

log = logging.getLogger(__name__)

METHODS = ("felzenszwalb", "hdbscan")


def run_baseline(
    method: str,
    scans: Sequence[str | Path],
    out_dir: str | Path,
    *,
    axis_align: bool = False,
    k_thresh: float | None = None,
    min_verts: int | None = None,
    voxel_size: float | None = None,
    min_cluster_size: int | None = None,
    up: str | None = None,
    scale: float | None = None,
    kind: str = "auto",
    force: bool = False,
) -> list[Path]:
    """Write the baseline's instances of every scan (``expand_scan_paths`` rules; meshes or point clouds) in
    the benchmark format, one line per input point in file order, and ``<scene>_instances.ply`` coloured by
    instance.

    ``voxel_size`` (metres of the scan): felzenszwalb's neighbour-graph voxel on point clouds (default 2 cm),
    or hdbscan's voxel (default 10 cm), both scaled with a tabletop's working frame (its profile's
    ``length_scale``); ``min_cluster_size``: hdbscan's, in voxels; ``up``/``scale``/``kind`` as in
    :func:`~unscene3d.io.scan.load_scan`. Scans whose ``<scene>.txt`` exists are skipped unless ``force``.
    Every scan still to do is read and checked before the first is computed. Returns the listings of all scans.

    Raises:
        InputError: an unknown method, a missing or malformed scan, scene names that cannot name files.
    """
    from unscene3d.baselines.felzenszwalb import DEFAULT_K_THRESH, DEFAULT_MIN_VERTS, felzenszwalb_instances
    from unscene3d.baselines.hdbscan import HdbscanConfig, hdbscan_instances

    if method not in METHODS:
        raise InputError(None, f"unknown baseline {method!r}: expected one of {', '.join(METHODS)}")
    hdbscan_config = HdbscanConfig()
    if min_cluster_size is not None:
        hdbscan_config = replace(hdbscan_config, min_cluster_size=min_cluster_size)
    out_dir = Path(out_dir)
    paths = expand_scan_paths(scans)
    names = scan_names(paths)
    listings = [out_dir / f"{name}.txt" for name in names]
    todo = [path for path, listing in zip(paths, listings) if force or not listing.exists()]
    if len(todo) < len(paths):
        log.info("%d of %d scans have predictions, skipping them (use --force to redo)", len(paths) - len(todo),
                 len(paths))
    checked = CheckedScans(todo, axis_align=axis_align, load_frames=False, up=up, scale=scale, kind=kind)
    scenes = iter(checked)  # lazily: scans beyond the memory budget are read on their turn
    for path in progress_log(checked.paths, f"baseline {method}"):
        scene = next(scenes)
        # a voxel given in metres, in the scan's working units
        voxel = None if voxel_size is None else voxel_size / scene.length_scale
        with about(path):
            if method == "felzenszwalb":
                found = felzenszwalb_instances(
                    scene,
                    k_thresh=DEFAULT_K_THRESH if k_thresh is None else k_thresh,
                    min_verts=DEFAULT_MIN_VERTS if min_verts is None else min_verts,
                    voxel_size=voxel,
                )
            else:
                config = hdbscan_config if voxel is None else replace(hdbscan_config, voxel_size=voxel)
                found = hdbscan_instances(scene, config)
        write_instances_ply(out_dir / f"{scene.name}{INSTANCES_PLY_SUFFIX}", scene, found)
        # its listing last: it marks the scan done
        export_predictions(out_dir, scene.name, found.to_input(scene).masks, found.scores)
        log.info("%s: %d instances", scene.name, len(found))
    return listings
