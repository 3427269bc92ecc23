"""The ``baseline`` command's library call: a learning-free baseline over many scans, resumable."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from unscene3d.errors import InputError, about
from unscene3d.io.benchmark import export_predictions
from unscene3d.io.scan import CheckedScans, expand_scan_paths, scan_names
from unscene3d.progress import progress_log
from unscene3d.segment_scans import require_mesh

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
    force: bool = False,
) -> list[Path]:
    """Write the baseline's instances of every scan (``expand_scan_paths`` rules) in the benchmark format.

    Scans whose ``<scene>.txt`` exists are skipped unless ``force``. Every scan still to do is read and
    checked before the first is computed. Returns the listings of all scans.

    Raises:
        InputError: an unknown method, a missing or malformed scan, scene names that cannot name files.
    """
    from unscene3d.baselines.felzenszwalb import DEFAULT_K_THRESH, DEFAULT_MIN_VERTS, felzenszwalb_instances
    from unscene3d.baselines.hdbscan import hdbscan_instances

    if method not in METHODS:
        raise InputError(None, f"unknown baseline {method!r}: expected one of {', '.join(METHODS)}")
    out_dir = Path(out_dir)
    paths = expand_scan_paths(scans)
    names = scan_names(paths)
    listings = [out_dir / f"{name}.txt" for name in names]
    todo = [path for path, listing in zip(paths, listings) if force or not listing.exists()]
    if len(todo) < len(paths):
        log.info("%d of %d scans have predictions, skipping them (use --force to redo)", len(paths) - len(todo),
                 len(paths))
    requirement = require_mesh if method == "felzenszwalb" else None
    checked = CheckedScans(todo, check=requirement, axis_align=axis_align, load_frames=False)
    scenes = iter(checked)  # lazily: scans beyond the memory budget are read on their turn
    for path in progress_log(checked.paths, f"baseline {method}"):
        scene = next(scenes)
        with about(path):
            if method == "felzenszwalb":
                masks, scores = felzenszwalb_instances(
                    scene,
                    k_thresh=DEFAULT_K_THRESH if k_thresh is None else k_thresh,
                    min_verts=DEFAULT_MIN_VERTS if min_verts is None else min_verts,
                )
            else:
                masks, scores = hdbscan_instances(scene)
        export_predictions(out_dir, scene.name, masks, scores)
        log.info("%s: %d instances", scene.name, len(masks))
    return listings
