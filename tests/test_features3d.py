"""Per-vertex 3D features: stride-2 voxel features copied exactly to vertices; the two CLI commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.errors import InputError
from unscene3d.features.features3d import extract_vertex_features, load_backbone, write_vertex_features
from unscene3d.io.ply import write_ply
from unscene3d.model.backbone import BackboneConfig, build_backbone, sparse_input
from unscene3d.scene import Scene
from unscene3d.voxelize import scene_point_features, voxelize

TINY = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1, 1, 1, 1, 1, 1, 1, 1), init_dim=8,
                      stem_kernel=3, out_channels=4)


def small_scene(seed: int = 0, count: int = 3000) -> Scene:
    rng = np.random.default_rng(seed)
    points = rng.uniform(-0.5, 0.7, size=(count, 3))
    points[: count // 2, 1] = -0.5
    colors = rng.integers(0, 256, size=(count, 3)).astype(np.uint8)
    return Scene(name=f"small{seed}", vertices=points, faces=np.zeros((0, 3), np.int64), colors=colors)


def test_vertex_features_are_the_stride2_voxel_features():
    scene = small_scene()
    model = build_backbone(TINY, seed=0)
    features = extract_vertex_features(model, scene)
    assert features.shape == (3000, 12) and features.dtype == np.float32
    assert model.training  # the caller's mode is restored
    vox = voxelize(scene.vertices, scene_point_features(scene))
    batch = sparse_input([vox])
    model.eval()
    with torch.no_grad():
        level = model(batch.tensor).levels[2]
    lookup = {tuple(row[1:]): i for i, row in enumerate(level.indices.numpy().tolist())}
    parents = np.floor_divide(vox.coords[vox.inverse] - batch.origins[0], 2)
    expected = level.features.numpy()[[lookup[tuple(p)] for p in parents.tolist()]]
    np.testing.assert_array_equal(features, expected)
    # Vertices sharing a stride-2 voxel share the feature; different voxels generally differ.
    same = np.all(parents == parents[0], axis=1)
    assert np.all(features[same] == features[0])


def test_features_from_checkpoint_and_bad_input(tmp_path):
    scene = small_scene(1)
    with pytest.raises(InputError, match="checkpoint not found"):
        extract_vertex_features(tmp_path / "missing", scene)
    with pytest.raises(InputError, match="stride"):
        extract_vertex_features(build_backbone(TINY, seed=0), scene, stride=3)
    empty = Scene(name="empty", vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), np.int64), colors=None)
    with pytest.raises(InputError, match="no vertices"):
        extract_vertex_features(build_backbone(TINY, seed=0), empty)
    out = write_vertex_features(tmp_path / "f" / "x.npy", np.ones((5, 3)))
    assert np.load(out).dtype == np.float32


def test_cli_pretrain_then_features3d(tmp_path):
    for seed in (0, 1):
        scene = small_scene(seed, 1500)
        write_ply(tmp_path / "scans" / f"room{seed}.ply", scene.vertices, None, scene.colors)
    runner = CliRunner()
    result = runner.invoke(app, ["pretrain", str(tmp_path / "scans"), "-o", str(tmp_path / "run"),
                                 "--steps", "1", "--num-pairs", "64", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "log.csv").read_text().count("\n") == 2
    # the test clouds are 1.2 m across, so read as tabletops unless told: as rooms, they are used as they are
    result = runner.invoke(app, ["features3d", str(tmp_path / "run" / "checkpoint"), str(tmp_path / "scans"),
                                 "-o", str(tmp_path / "feat"), "--device", "cpu", "--kind", "room", "--up", "z"])
    assert result.exit_code == 0, result.output
    features = np.load(tmp_path / "feat" / "room0.npy")
    assert features.shape == (1500, 96)
    manifest = json.loads((tmp_path / "feat" / "features3d.json").read_text())
    assert manifest["format_version"] == 1 and manifest["channels"] == 96 and manifest["stride"] == 2
    model, _ = load_backbone(tmp_path / "run")
    np.testing.assert_array_equal(features, extract_vertex_features(model, small_scene(0, 1500)))
    again = runner.invoke(app, ["pretrain", str(tmp_path / "scans"), "-o", str(tmp_path / "run"), "--steps", "1"])
    assert again.exit_code == 2 and "already holds checkpoints" in again.output
    missing = runner.invoke(app, ["features3d", str(tmp_path / "nope"), str(tmp_path / "scans"), "-o", str(tmp_path)])
    assert missing.exit_code == 2 and "checkpoint not found" in missing.output


def test_real_scene_features_cover_every_vertex(scene0000_dir):
    from unscene3d.io.scan import load_scan

    scene = load_scan(scene0000_dir, load_frames=False)
    features = extract_vertex_features(build_backbone(TINY, seed=0), scene)
    assert features.shape == (scene.vertices.shape[0], 12)
    assert np.isfinite(features).all()
