"""Baseline: Felzenszwalb segments (of the mesh, or of a point cloud's neighbour graph) taken directly as
object instances."""

from __future__ import annotations

from unscene3d.baselines.common import partition_to_instances
from unscene3d.instances import Instances
from unscene3d.oversegment_points import oversegment_scene
from unscene3d.scene import Scene

# Coarser than the ScanNet release segments (0.01, 20), which split objects into small patches: with
# these, segments approach object size (DESIGN.md section 4 gives reference figures for both settings).
DEFAULT_K_THRESH = 0.05
DEFAULT_MIN_VERTS = 500


def felzenszwalb_instances(
    scene: Scene,
    *,
    k_thresh: float = DEFAULT_K_THRESH,
    min_verts: int = DEFAULT_MIN_VERTS,
    variant: str = "scannet",
    voxel_size: float | None = None,
) -> Instances:
    """Oversegment the scan (:func:`~unscene3d.oversegment_points.oversegment_scene`; ``voxel_size`` is for
    point clouds) and return each segment as an instance mask over the vertices, scored by its size."""
    segmentation = oversegment_scene(
        scene, variant=variant, k_thresh=k_thresh, min_verts=min_verts, voxel_size=voxel_size
    )
    return partition_to_instances(segmentation.labels)
