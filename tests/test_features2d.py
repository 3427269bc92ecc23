"""2D features: encoder facet extraction (tiny random ViTs, no download) and back-projection."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from transformers import Dinov2Config, Dinov2Model, ViTConfig, ViTModel

from unscene3d.errors import InputError
from unscene3d.features.features2d import (
    FeatureMap,
    ImageEncoder,
    backproject_features,
    encoder_vertex_features,
    image_feature_map,
)
from unscene3d.scene import Frame
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.synthetic.render import look_at


@pytest.fixture(scope="module")
def scene_with_frames():
    return make_synthetic_scene(0, with_frames=True, num_frames=2, image_size=(96, 72))


def tiny_vit() -> ViTModel:
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=24, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, patch_size=8, image_size=32
    )
    return ViTModel(config, add_pooling_layer=False)


def test_feature_map_bilinear_sampling() -> None:
    grid = np.arange(6, dtype=np.float32).reshape(2, 3, 1)  # cells 2x2 pixels each
    fmap = FeatureMap(grid, 2.0, 2.0)
    # cell centres are at pixel 0.5, 2.5, 4.5 (x) and 0.5, 2.5 (y)
    samples = fmap.sample(np.array([0.5, 2.5, 1.5, -3.0]), np.array([0.5, 2.5, 0.5, 0.5]))
    np.testing.assert_allclose(samples[:, 0], [0, 4, 0.5, 0])


def test_vit_key_facet_matches_the_key_projection_output() -> None:
    model = tiny_vit()
    encoder = ImageEncoder(model, layer=1, resize=0.5)
    image = np.random.default_rng(0).integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    fmap = encoder(image)
    assert fmap.grid.shape == (3, 4, 24)  # 64x48 at 0.5 -> 32x24 pixels -> 4x3 patches of 8
    assert fmap.cell_width == pytest.approx(16.0) and fmap.cell_height == pytest.approx(16.0)
    # the same facet straight from the module, by a second hook
    captured = {}
    handle = model.layers[1].attention.k_proj.register_forward_hook(lambda m, i, o: captured.setdefault("k", o))
    encoder(image)
    handle.remove()
    np.testing.assert_allclose(fmap.grid.reshape(12, 24), captured["k"][0, 1:].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="layer 3 does not exist"):
        ImageEncoder(model, layer=3)


def test_dinov2_encoder_works_too() -> None:
    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, patch_size=14, image_size=28
    )
    encoder = ImageEncoder(Dinov2Model(config), layer=1, resize=1.0)
    fmap = encoder(np.zeros((28, 42, 3), dtype=np.uint8))
    assert fmap.grid.shape == (2, 3, 24)


def correlation(scene, occlusion: bool) -> float:
    projected, counts = backproject_features(scene, image_feature_map, occlusion=occlusion)
    seen = counts > 0
    assert seen.sum() > 1000
    return float(np.corrcoef(projected[seen].ravel(), scene.colors[seen].astype(float).ravel())[0, 1])


def test_backprojected_colours_match_vertex_colours_with_depth_maps_and_rendered_depth(scene_with_frames) -> None:
    with_depth = correlation(scene_with_frames, occlusion=True)
    assert with_depth > 0.8
    assert with_depth > correlation(scene_with_frames, occlusion=False) + 0.05
    without_maps = make_synthetic_scene(0, with_frames=False)
    without_maps.frames = [
        Frame(pose=f.pose, intrinsic=f.intrinsic, color=f.color, name=f.name) for f in scene_with_frames.frames
    ]
    assert correlation(without_maps, occlusion=True) > 0.8  # z-buffer of the mesh instead of depth maps


def test_frame_pointing_away_gives_empty_features_and_a_warning(scene_with_frames, caplog) -> None:
    frame = scene_with_frames.frames[0]
    centre = scene_with_frames.vertices.mean(axis=0)
    eye = scene_with_frames.vertices.max(axis=0) + 5.0
    away = look_at(eye, eye + (eye - centre))  # outside the room, facing away from it
    lost = Frame(pose=away, intrinsic=frame.intrinsic, color=frame.color, name="lost")
    with caplog.at_level(logging.WARNING):
        feats, counts = backproject_features(scene_with_frames, image_feature_map, frames=[lost])
    assert counts.sum() == 0 and not feats.any()
    assert "sees no part of the mesh" in caplog.text


def test_encoder_vertex_features_and_missing_frames(scene_with_frames) -> None:
    encoder = ImageEncoder(tiny_vit(), layer=2, resize=1.0)
    feats = encoder_vertex_features(scene_with_frames, encoder, frame_step=1)
    assert feats.shape == (scene_with_frames.num_vertices, 24)
    assert (np.abs(feats).sum(axis=1) > 0).mean() > 0.1
    no_frames = make_synthetic_scene(0)
    with pytest.raises(InputError, match="frames"):
        encoder_vertex_features(no_frames, encoder)
