"""Per-vertex 3D features from a (pretrained) sparse backbone, as the pseudo-mask stage pools them.

The official pipeline takes the decoder level at stride 2 (96-d for Res16UNet34C) and copies each
voxel's feature to the vertices inside it; :func:`extract_vertex_features` does exactly that (the
stride-2 voxel holding a vertex is found by integer division, no nearest-neighbour search).
:func:`extract_features_for_scans` writes the folder that ``pseudo-masks --features3d`` reads instead of running
the backbone again (layout: :mod:`unscene3d.features.folder`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from unscene3d.errors import InputError
from unscene3d.features.folder import FEATURE_STRIDE, write_manifest
from unscene3d.io.atomic import atomic_output
from unscene3d.model.backbone import BackboneConfig, Res16UNet, sparse_input
from unscene3d.model.checkpoint import load_checkpoint, load_model_state
from unscene3d.model.sparse_backend import resolve_device
from unscene3d.scene import Scene
from unscene3d.voxelize import coarse_voxel_index, scene_point_features, voxelize

log = logging.getLogger(__name__)



def load_backbone(
    checkpoint_path: str | Path, device: str | torch.device | None = None
) -> tuple[Res16UNet, BackboneConfig]:
    """The backbone saved in a checkpoint (folder, its model.safetensors, or a run folder), in eval mode.

    Raises:
        InputError: the checkpoint is missing, incomplete, or its weights do not fit its config.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint.state["backbone"] is None:
        raise InputError(checkpoint.folder, "a segment-model checkpoint has no 3D backbone to extract features with")
    try:
        config = BackboneConfig.from_dict(checkpoint.state["backbone"])
    except (InputError, TypeError) as error:
        raise InputError(checkpoint.folder, f"bad backbone config in checkpoint: {error}") from None
    model = Res16UNet(config)
    load_model_state(model, checkpoint.model, checkpoint.folder)
    model.to(resolve_device(device)).eval()
    return model, config


def extract_vertex_features(
    model_or_checkpoint: Res16UNet | str | Path,
    scene: Scene,
    *,
    device: str | torch.device | None = None,
    stride: int = FEATURE_STRIDE,
) -> np.ndarray:
    """(N, C) float32 features per vertex: the decoder level at ``stride`` copied from voxels to vertices.

    ``C`` is the level's width: 96 at stride 2 for the paper-size network. The model runs in eval mode
    without gradients (a model passed in is put back into its previous mode afterwards).
    """
    if isinstance(model_or_checkpoint, (str, Path)):
        model, _ = load_backbone(model_or_checkpoint, device)
    else:
        model = model_or_checkpoint
    config: BackboneConfig = model.config
    if stride not in (1, 2, 4, 8, 16):
        raise InputError(None, f"no decoder level at stride {stride}: expected 1, 2, 4, 8 or 16")
    if scene.vertices.shape[0] == 0:
        raise InputError(scene.source or scene.name, "the scan has no vertices")
    run_device = next(model.parameters()).device if device is None else resolve_device(device)
    model.to(run_device)
    voxels = voxelize(scene.vertices, scene_point_features(scene, config.input_channels), config.voxel_size)
    batch = sparse_input([voxels], run_device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            level = model(batch.tensor).levels[stride]
    finally:
        model.train(was_training)
    level_coords = level.indices[:, 1:].cpu().numpy().astype(np.int64)
    fine_coords = voxels.coords - batch.origins[0]
    voxel_to_level = coarse_voxel_index(fine_coords, level_coords, stride)
    features = level.features.float().cpu().numpy()
    return np.ascontiguousarray(features[voxel_to_level[voxels.inverse]], dtype=np.float32)


def write_vertex_features(path: str | Path, features: np.ndarray) -> Path:
    """Save (N, C) features as a float32 ``.npy`` file, atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.asarray(features, dtype=np.float32))
    return path


def extract_features_for_scans(
    checkpoint_path: str | Path,
    scans: Sequence[str | Path],
    out_dir: str | Path,
    *,
    device: str | None = None,
    up: str | None = None,
    scale: float | None = None,
    kind: str = "auto",
) -> list[Path]:
    """Write ``OUT_DIR/<scene>.npy`` (N, C) per-vertex features for each scan; returns the files.

    Rows follow the scene's vertices: a point cloud's points without coordinates have none. ``up`` and
    ``scale`` as in :func:`~unscene3d.io.scan.load_scan`."""
    from unscene3d.io.scan import load_scan
    from unscene3d.progress import progress_log

    model, config = load_backbone(checkpoint_path, device)
    write_manifest(out_dir, checkpoint_path, config.feature_dim)
    written = []
    for scan in progress_log(list(scans), "features3d"):
        scene = load_scan(scan, load_frames=False, up=up, scale=scale, kind=kind)
        features = extract_vertex_features(model, scene)
        written.append(write_vertex_features(Path(out_dir) / f"{scene.name}.npy", features))
    return written

