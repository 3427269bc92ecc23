"""Contrastive pretraining: losses, exact resume, checkpoints, bad input."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch

from unscene3d.errors import InputError
from unscene3d.features.features3d import load_backbone
from unscene3d.io.scan import expand_scan_paths
from unscene3d.model.backbone import BackboneConfig, sparse_input
from unscene3d.model.checkpoint import load_checkpoint
from unscene3d.scene import Scene
from unscene3d.train.augment import AugmentConfig, augment_view, random_crop
from unscene3d.train.contrastive import csc_info_nce, info_nce, sample_matches, spatial_partitions
from unscene3d.train.pretrain import (
    PretrainConfig,
    learning_rate,
    preset_config,
    pretrain,
)
from unscene3d.voxelize import InputChannels, voxelize

TINY_BACKBONE = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1, 1, 1, 1, 1, 1, 1, 1),
                               init_dim=8, stem_kernel=3, out_channels=8)


def tiny_config(**overrides) -> PretrainConfig:
    base = PretrainConfig(
        preset="test", backbone=TINY_BACKBONE,
        augment=AugmentConfig(crop_size=0.8, min_crop_points=100, elastic=((0.2, 0.02),)),
        steps=3, batch_size=2, lr=1e-2, warmup_steps=1, num_pairs=128, checkpoint_every=1, log_every=1,
        csc_radius=0.3,
    )
    return dataclasses.replace(base, **overrides)


def room(seed: int, count: int = 2500) -> Scene:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0.0, 1.2, size=(count, 3))
    points[: count // 2, 2] = 0.0
    colors = rng.integers(0, 256, size=(count, 3)).astype(np.uint8)
    colors[points[:, 0] > 0.6] = (200, 30, 30)
    return Scene(name=f"room{seed}", vertices=points, faces=np.zeros((0, 3), np.int64), colors=colors)


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [room(0), room(1)]


def test_info_nce_prefers_matching_features():
    rng = torch.Generator().manual_seed(0)
    anchor = torch.randn(64, 16, generator=rng)
    good, good_acc = info_nce(anchor, anchor + 0.01 * torch.randn(64, 16, generator=rng), 0.4)
    bad, _ = info_nce(anchor, torch.randn(64, 16, generator=rng), 0.4)
    assert good < bad
    assert good_acc == 1.0
    positions = torch.rand(64, 3, generator=rng)
    scans = torch.zeros(64, dtype=torch.long)
    csc_good, _ = csc_info_nce(anchor, anchor, positions, scans, 0.4, radius=0.5)
    csc_bad, _ = csc_info_nce(anchor, torch.randn(64, 16, generator=rng), positions, scans, 0.4, radius=0.5)
    assert csc_good < csc_bad


def test_spatial_partitions_by_shell_and_sector():
    positions = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.1, 0.0], [-3.0, -0.1, 0.0]])
    part = spatial_partitions(positions, radius=2.0, sectors=4)
    # Point 1 is near and towards +x (sector 2 of 4 counting from -pi), point 2 far and towards -x.
    assert part[0, 1].item() == 2
    assert part[0, 2].item() == 4 + 0


def test_sample_matches_has_no_repeated_voxels():
    rng = np.random.default_rng(0)
    voxel_a = rng.integers(0, 50, size=1000)
    voxel_b = rng.integers(0, 80, size=1000)
    a, b, points = sample_matches(voxel_a, voxel_b, 40, rng)
    assert len(a) == len(b) == len(points) <= 40
    assert len(set(a.tolist())) == len(a) and len(set(b.tolist())) == len(b)
    np.testing.assert_array_equal(voxel_a[points], a)
    np.testing.assert_array_equal(voxel_b[points], b)


def test_augmented_view_keeps_point_order_and_colour_range():
    points = room(3).vertices
    colors = np.random.default_rng(0).uniform(-0.5, 0.5, size=(len(points), 3)).astype(np.float32)
    rng = np.random.default_rng(1)
    keep = random_crop(points, rng, 0.6, 100)
    assert len(keep) >= 100 and np.all(np.abs(points[keep, :2] - points[keep, :2].mean(0)) <= 0.6 + 1e-9)
    view, jittered = augment_view(points, colors, rng, AugmentConfig())
    assert view.shape == points.shape and jittered.shape == colors.shape
    assert jittered.min() >= -0.5 and jittered.max() <= 0.5
    # Rigid part + small distortion: distances between points change by a bounded factor.
    d0 = np.linalg.norm(points[0] - points[1])
    d1 = np.linalg.norm(view[0] - view[1])
    assert 0.5 * d0 < d1 + 0.2 and d1 < 2.0 * d0 + 0.2


def test_augmented_view_rotates_normals_and_keeps_the_occupancy_channel():
    points = room(3).vertices
    normals = np.tile(np.array([[1.0, 0.0, 0.0]], dtype=np.float32), (len(points), 1))
    features = np.concatenate([normals, np.ones((len(points), 1), np.float32)], axis=1)
    channels = InputChannels(use_color=False, use_normals=True)
    _, out = augment_view(points, features, np.random.default_rng(2), AugmentConfig(), channels)
    np.testing.assert_allclose(np.linalg.norm(out[:, :3], axis=1), 1.0, rtol=1e-5)  # rotated, not jittered
    np.testing.assert_allclose(out[:, 2], 0.0, atol=1e-6)  # rotation about z keeps them horizontal
    assert np.allclose(out[:, :3], out[0, :3]) and not np.allclose(out[0, :3], [1, 0, 0])
    np.testing.assert_array_equal(out[:, 3], 1.0)


def test_learning_rate_warmup_then_cosine():
    config = tiny_config(steps=10, warmup_steps=2, lr=1.0)
    assert learning_rate(config, 0) == pytest.approx(0.5)
    assert learning_rate(config, 2) == pytest.approx(1.0)
    assert learning_rate(config, 10) == pytest.approx(0.0)


def test_resume_continues_exactly(tmp_path, scenes):
    config = tiny_config()
    full = pretrain(scenes, tmp_path / "full", config, device="cpu")
    first = pretrain(scenes, tmp_path / "split", config, device="cpu", max_steps=2)
    assert first.last_step == 2
    second = pretrain(scenes, tmp_path / "split", None, resume=True, device="cpu")
    assert second.last_step == 3
    assert first.losses + second.losses == full.losses
    a = load_checkpoint(tmp_path / "full", with_optimizer=True)
    b = load_checkpoint(tmp_path / "split", with_optimizer=True)
    assert a.step == b.step == 3
    for name in a.model:
        assert torch.equal(a.model[name], b.model[name]), name
    for name in a.optimizer:
        assert torch.equal(a.optimizer[name], b.optimizer[name]), name
    with open(tmp_path / "split" / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert [float(r["loss"]) for r in rows] == pytest.approx(full.losses, abs=1e-6)
    # Only the newest checkpoints are kept and the link names the last one.
    state = json.loads((tmp_path / "split" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3 and state["train"]["steps"] == 3


def test_checkpoint_reload_gives_bit_identical_outputs(tmp_path, scenes):
    result = pretrain(scenes, tmp_path / "run", tiny_config(steps=1), device="cpu")
    model, config = load_backbone(result.checkpoint)
    again, _ = load_backbone(tmp_path / "run" / "checkpoint" / "model.safetensors")
    assert config == TINY_BACKBONE
    batch = sparse_input([voxelize(scenes[0].vertices, scenes[0].colors / 255.0 - 0.5)])
    with torch.no_grad():
        first = model(batch.tensor).levels[2].features
        second = again(batch.tensor).levels[2].features
    assert torch.equal(first, second)


def test_bad_runs_and_checkpoints_raise_input_errors(tmp_path, scenes):
    with pytest.raises(InputError, match="no complete checkpoint"):
        pretrain(scenes, tmp_path / "empty", tiny_config(), resume=True)
    pretrain(scenes, tmp_path / "run", tiny_config(steps=1), device="cpu")
    with pytest.raises(InputError, match="already holds checkpoints"):
        pretrain(scenes, tmp_path / "run", tiny_config(steps=1))
    with pytest.raises(InputError, match="another configuration"):
        pretrain(scenes, tmp_path / "run", tiny_config(steps=1, lr=0.5), resume=True)
    (tmp_path / "run" / "checkpoint" / "model.safetensors").unlink()
    with pytest.raises(InputError, match="checkpoint file missing"):
        load_backbone(tmp_path / "run")
    with pytest.raises(InputError, match="checkpoint not found"):
        load_backbone(tmp_path / "nowhere")
    with pytest.raises(InputError, match="unknown preset"):
        preset_config("huge")
    with pytest.raises(InputError, match="no scans"):
        pretrain([], tmp_path / "none", tiny_config())


def test_weights_of_another_configuration_are_rejected(tmp_path, scenes):
    pretrain(scenes, tmp_path / "run", tiny_config(steps=1), device="cpu")
    state_path = tmp_path / "run" / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    state["backbone"]["planes"] = [8, 8, 16, 16, 16, 8, 16, 16]
    state_path.write_text(json.dumps(state))
    with pytest.raises(InputError, match="do not match the model configuration"):
        load_backbone(tmp_path / "run")


def test_presets():
    paper = preset_config("paper")
    assert paper.backbone == BackboneConfig() and paper.num_pairs == 4096 and paper.temperature == 0.4
    small = preset_config("cpu-small", steps=5)
    assert small.steps == 5 and small.backbone.feature_dim == 96
    assert PretrainConfig.from_dict(small.to_dict()) == small


def test_expand_scan_paths(tmp_path):
    from unscene3d.io.ply import write_ply

    scene = room(4, 50)
    write_ply(tmp_path / "a.ply", scene.vertices, None, scene.colors)
    write_ply(tmp_path / "b.ply", scene.vertices, None, scene.colors)
    assert [p.name for p in expand_scan_paths([tmp_path])] == ["a.ply", "b.ply"]
    assert expand_scan_paths([tmp_path / "a.ply"]) == [tmp_path / "a.ply"]
    with pytest.raises(InputError, match="no such file"):
        expand_scan_paths([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no scans found"):
        expand_scan_paths([tmp_path / "empty"])


def test_sgd_state_round_trips_through_tensors():
    from unscene3d.train.loop import optimizer_from_tensors, optimizer_to_tensors
    from unscene3d.train.pretrain import make_optimizer

    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    optimizer = make_optimizer(layer, tiny_config(optimizer="sgd", lr=0.1))
    layer(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    tensors, meta = optimizer_to_tensors(optimizer)
    meta = json.loads(json.dumps(meta))  # it is stored as JSON
    restored = make_optimizer(layer, tiny_config(optimizer="sgd", lr=0.1))
    restored.load_state_dict(optimizer_from_tensors(tensors, meta))
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(restored.state_dict()["state"][0][key], value)
    assert restored.param_groups[0]["momentum"] == 0.9
