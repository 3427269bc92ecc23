"""Query decoder on random multi-scale tensors: shapes, attention masks, FPS, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unscene3d.errors import InputError
from unscene3d.model.decoder import (
    DecoderConfig,
    MultiScaleInput,
    QueryDecoder,
    _scatter_mean,
    furthest_point_sampling,
)
from unscene3d.model.losses import LossConfig, set_criterion

CHANNELS = (32, 24, 16, 16)
STRIDES = (8, 4, 2, 1)
SAMPLE_SIZES = (5, 10, 40, 100)
NUM_QUERIES = 12


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_input(voxels=(300, 200), segments=(10, 7), *, with_segments=True, points_per_voxel=1, seed=0):
    """Random scenes: unique fine voxels, their coarser levels by floor division, random segments."""
    generator = torch.Generator().manual_seed(seed)
    levels = range(len(STRIDES))
    features, coords, batch, fine_to_level = ([[] for _ in levels] for _ in range(4))
    offsets = [0] * len(STRIDES)
    point_to_fine, point_segment = [], []
    segment_offset = 0
    for scene, count in enumerate(voxels):
        fine = torch.unique(torch.randint(0, 24, (count, 3), generator=generator), dim=0)
        for level, stride in enumerate(STRIDES):
            level_coords, inverse = torch.unique(torch.div(fine, stride, rounding_mode="floor"), dim=0, return_inverse=True)
            coords[level].append((level_coords.float() + 0.5) * stride)
            features[level].append(torch.randn(len(level_coords), CHANNELS[level], generator=generator))
            batch[level].append(torch.full((len(level_coords),), scene))
            fine_to_level[level].append(inverse + offsets[level])
            offsets[level] += len(level_coords)
        scene_points = (torch.arange(len(fine)) + offsets[-1] - len(fine)).repeat_interleave(points_per_voxel)
        point_to_fine.append(scene_points)
        labels = torch.randint(0, segments[scene], (len(scene_points),), generator=generator)
        labels[: segments[scene]] = torch.arange(segments[scene])  # every segment used
        point_segment.append(labels + segment_offset)
        segment_offset += segments[scene]
    return MultiScaleInput(
        features=[torch.cat(f) for f in features],
        coords=[torch.cat(c) for c in coords],
        batch=[torch.cat(b) for b in batch],
        fine_to_level=[torch.cat(f) for f in fine_to_level],
        num_scenes=len(voxels),
        point_to_fine=torch.cat(point_to_fine) if points_per_voxel > 1 else None,
        point_segment=torch.cat(point_segment) if with_segments else None,
    )


def make_decoder(seed=0, **overrides):
    torch.manual_seed(seed)
    config = DecoderConfig(level_channels=CHANNELS, num_queries=NUM_QUERIES, sample_sizes=SAMPLE_SIZES, **overrides)
    return QueryDecoder(config)


def test_paper_config_defaults():
    config = DecoderConfig()
    assert (config.hidden_dim, config.num_heads, config.ffn_dim, config.dropout) == (128, 8, 1024, 0.0)
    assert (config.num_passes, config.num_levels, config.num_queries) == (3, 4, 100)
    assert DecoderConfig.from_dict(config.to_dict()) == config
    bounded = DecoderConfig(eval_sample_sizes=(10, 20, 30, 40))
    assert DecoderConfig.from_dict(bounded.to_dict()) == bounded
    with pytest.raises(InputError):
        DecoderConfig(sample_sizes=(1, 2))


def test_shapes_of_every_prediction_and_attention_mask_in_evaluation():
    inputs = make_input(points_per_voxel=2)
    decoder = make_decoder().eval()
    with torch.no_grad():
        out = decoder(inputs, point_masks=True, keep_attention_masks=True)
    assert len(out.predictions) == 3 * 4 + 1 and len(out.auxiliary) == 12
    point_counts = torch.bincount(inputs.batch[-1][inputs.point_to_fine]).tolist()
    for prediction in out.predictions:
        assert prediction.class_logits.shape == (2, NUM_QUERIES, 2)
        assert [m.shape for m in prediction.mask_logits] == [(NUM_QUERIES, 10), (NUM_QUERIES, 7)]
    assert [m.shape for m in out.final.point_mask_logits] == [(NUM_QUERIES, n) for n in point_counts]
    assert all(p.point_mask_logits is None for p in out.auxiliary)  # only the final one is needed
    assert len(out.attention_masks) == 12
    for layer, blocked in enumerate(out.attention_masks):
        level_counts = torch.bincount(inputs.batch[layer % 4]).tolist()
        assert blocked.shape == (2, NUM_QUERIES, max(level_counts))  # every voxel is a key in evaluation
        assert blocked[1, :, level_counts[1]:].all()  # padding of the smaller scene is never attended
    assert out.query_positions.shape == (2, NUM_QUERIES, 3)


def test_training_samples_a_bounded_number_of_keys_per_level():
    inputs = make_input()
    out = make_decoder().train()(inputs, keep_attention_masks=True)
    for layer, blocked in enumerate(out.attention_masks):
        level = layer % 4
        largest = max(torch.bincount(inputs.batch[level]).tolist())
        assert blocked.shape[2] == min(largest, SAMPLE_SIZES[level])


def test_evaluation_can_bound_the_keys_deterministically():
    inputs = make_input()
    decoder = make_decoder(eval_sample_sizes=(3, 6, 30, 60)).eval()
    with torch.no_grad():
        first = decoder(inputs, keep_attention_masks=True)
        second = decoder(inputs)
    assert [m.shape[2] for m in first.attention_masks[:4]] == [3, 6, 30, 60]
    torch.testing.assert_close(first.final.mask_logits[1], second.final.mask_logits[1])


def test_point_logits_are_their_segment_logits():
    inputs = make_input(points_per_voxel=3)
    with torch.no_grad():
        final = make_decoder().eval()(inputs, point_masks=True).final
    segments = inputs.point_segment
    scene0 = inputs.batch[-1][inputs.point_to_fine] == 0
    torch.testing.assert_close(final.point_mask_logits[0], final.mask_logits[0][:, segments[scene0]])
    torch.testing.assert_close(final.point_mask_logits[1], final.mask_logits[1][:, segments[~scene0] - 10])


def test_masks_over_points_without_segments():
    inputs = make_input(with_segments=False)
    with torch.no_grad():
        final = make_decoder().eval()(inputs).final
    fine_counts = torch.bincount(inputs.batch[-1]).tolist()
    assert [m.shape for m in final.mask_logits] == [(NUM_QUERIES, n) for n in fine_counts]
    assert final.point_mask_logits is None


def test_attention_masks_come_from_the_previous_prediction():
    inputs = make_input(points_per_voxel=2)
    with torch.no_grad():
        out = make_decoder().eval()(inputs, keep_attention_masks=True)
    point_level = [f2l[inputs.point_to_fine] for f2l in inputs.fine_to_level]
    for layer in range(5):  # first pass and the start of the second
        level = layer % 4
        segment_logits = torch.cat([m.T for m in out.predictions[layer].mask_logits])  # (S, Q)
        point_logits = segment_logits[inputs.point_segment]
        voxel_logits = _scatter_mean(point_logits, point_level[level], len(inputs.batch[level]))
        expected = voxel_logits.sigmoid() < 0.5
        for scene in range(2):
            rows = expected[inputs.batch[level] == scene].T.clone()
            rows[rows.all(dim=1)] = False  # fully masked queries attend everywhere
            actual = out.attention_masks[layer][scene, :, : rows.shape[1]]
            assert torch.equal(actual, rows)


def test_a_fully_masked_query_row_is_unmasked_but_padding_stays_masked():
    decoder = make_decoder()
    keys = torch.randn(5, decoder.config.hidden_dim)
    blocked = torch.zeros(5, 3, dtype=torch.bool)
    blocked[:, 1] = True  # query 1 may see no key at all
    blocked[0, 2] = True
    samples = [torch.arange(0, 3), torch.arange(3, 5)]
    _, _, batched = decoder._gather_keys(keys, keys, blocked, samples)
    assert batched.shape == (2, 3, 3)
    assert not batched[:, 1, :2].any()  # unmasked over the real keys of both scenes
    assert batched[1, :, 2].all()  # scene 1's padding slot
    assert batched[0, 2].tolist() == [True, False, False]


def test_furthest_point_sampling_is_deterministic_and_spread():
    points = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [10, 0, 0]])
    assert furthest_point_sampling(points, 3).tolist() == [0, 4, 3]
    assert furthest_point_sampling(points, 7).tolist() == [0, 4, 3, 1, 2, 0, 4]  # cycles when short
    cloud = torch.rand(500, 3)
    assert torch.equal(furthest_point_sampling(cloud, 20), furthest_point_sampling(cloud, 20))


def test_evaluation_is_deterministic():
    inputs = make_input()
    decoder = make_decoder().eval()
    with torch.no_grad():
        first, second = decoder(inputs), decoder(inputs)
    torch.testing.assert_close(first.final.mask_logits[0], second.final.mask_logits[0])
    torch.testing.assert_close(first.query_positions, second.query_positions)


def test_gradients_reach_every_level_and_head():
    inputs = make_input(points_per_voxel=2)
    for features in inputs.features:
        features.requires_grad_(True)
    decoder = make_decoder().train()
    out = decoder(inputs)
    targets = [m.detach() > 0.3 for m in out.final.mask_logits]
    loss, _ = set_criterion(out.predictions, targets, LossConfig(drop_loss=False))
    loss.backward()
    assert torch.isfinite(loss)
    for level, features in enumerate(inputs.features):
        assert features.grad is not None and features.grad.abs().sum() > 0, f"no gradient at level {level}"
    for name in ("level_projections.0.weight", "mask_features.weight", "query_projection.0.weight",
                 "class_head.weight", "mask_embedding.2.weight", "cross_attention.3.attention.in_proj_weight",
                 "feed_forward.0.net.0.weight"):
        grad = dict(decoder.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_bad_inputs_are_reported():
    inputs = make_input()
    inputs.features = inputs.features[:3]
    with pytest.raises(InputError, match="4 feature levels"):
        make_decoder()(inputs)
    gapped = make_input()
    gapped.point_segment = gapped.point_segment * 2  # odd ids unused
    with pytest.raises(InputError, match="segment ids"):
        make_decoder()(gapped)
    crossing = make_input()
    crossing.point_segment[-1] = 0  # a segment of scene 0 used in scene 1
    with pytest.raises(InputError, match="segment ids"):
        make_decoder()(crossing)


def tiny_model_config():
    from unscene3d.model.backbone import BackboneConfig
    from unscene3d.model.mask3d import Mask3DConfig

    backbone = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1,) * 8, init_dim=8, stem_kernel=3)
    decoder = DecoderConfig(level_channels=(16, 8, 12, 12), hidden_dim=16, num_heads=2, ffn_dim=32,
                            num_queries=6, sample_sizes=(20, 40, 80, 160))
    return Mask3DConfig(backbone, decoder)


def tiny_crop(seed: int, count: int, with_colors: bool = True):
    """Random points in a 0.5 m cube, half of them on the floor; segments = 0.2 m cells (compact ids)."""
    from unscene3d.scene import Scene

    rng = np.random.default_rng(seed)
    points = rng.uniform(0.0, 0.5, size=(count, 3))
    points[: count // 2, 2] = 0.0
    colors = rng.integers(0, 256, size=(count, 3), dtype=np.uint8) if with_colors else None
    cells = np.floor_divide(points, 0.2).astype(np.int64)
    _, segments = np.unique(cells, axis=0, return_inverse=True)
    scene = Scene(f"crop{seed}", points, np.zeros((0, 3), np.int64), colors)
    return scene, segments.reshape(-1)


def test_mask3d_wires_backbone_levels_into_the_decoder():
    from unscene3d.model.mask3d import Mask3DConfig, build_mask3d, scan_input

    config = tiny_model_config()
    assert Mask3DConfig.from_dict(config.to_dict()) == config
    model = build_mask3d(config, seed=0).train()
    crops = [tiny_crop(0, 400), tiny_crop(1, 250, with_colors=False)]
    scans = [scan_input(scene, segments, config) for scene, segments in crops]
    out = model(scans, point_masks=True)
    assert len(out.predictions) == 13
    for prediction in (out.predictions[0], out.final):
        assert prediction.class_logits.shape == (2, 6, 2)
        assert [m.shape for m in prediction.mask_logits] == [(6, segments.max() + 1) for _, segments in crops]
    for (scene, segments), masks, point_masks in zip(crops, out.final.mask_logits, out.final.point_mask_logits):
        assert point_masks.shape == (6, len(scene.vertices))
        torch.testing.assert_close(point_masks, masks[:, torch.from_numpy(segments)])
    targets = [torch.eye(segments.max() + 1, dtype=torch.bool)[:2] for _, segments in crops]  # segments 0, 1
    loss, _ = set_criterion(out.predictions, targets)
    loss.backward()
    assert model.backbone.stem.conv.weight.grad.abs().sum() > 0
    assert model.decoder.mask_features.weight.grad.abs().sum() > 0


def test_prediction_on_a_scan_without_colour_or_segments():
    from unscene3d.model.mask3d import build_mask3d, predict_scene

    config = tiny_model_config()
    model = build_mask3d(config, seed=0).train()
    scene, _ = tiny_crop(2, 300, with_colors=False)
    result = predict_scene(model, scene)
    assert model.training  # put back in its mode
    assert result.masks.shape[1] == len(scene.vertices) and result.masks.shape[0] <= 6
    assert result.scores.shape == result.queries.shape == (result.masks.shape[0],)
    assert np.all(np.diff(result.scores) <= 0)


def test_mask3d_rejects_a_decoder_that_does_not_fit_the_backbone():
    from unscene3d.model.backbone import BackboneConfig
    from unscene3d.model.mask3d import Mask3DConfig

    with pytest.raises(InputError, match="level channels"):
        Mask3DConfig(BackboneConfig(), DecoderConfig(level_channels=(16, 8, 12, 12)))


def test_tiny_model_overfits_two_objects_end_to_end():
    """Model, losses and post-processing wired together: training on one toy scene's true masks (as
    pseudo masks) recovers both objects exactly."""
    from unscene3d.model.backbone import BackboneConfig
    from unscene3d.model.mask3d import Mask3DConfig, build_mask3d, predict_scene, scan_input
    from unscene3d.scene import Scene

    rng = np.random.default_rng(0)
    parts, labels = [rng.uniform([0, 0, 0], [1.0, 1.0, 0], (1000, 3))], [np.zeros(1000, int)]
    for instance, (x, y, size) in enumerate([(0.25, 0.25, 0.2), (0.7, 0.65, 0.25)], start=1):
        low, high = [x - size / 2, y - size / 2, 0.02], [x + size / 2, y + size / 2, size]
        parts.append(rng.uniform(low, high, (500, 3)))
        labels.append(np.full(500, instance))
    points, labels = np.concatenate(parts), np.concatenate(labels)
    cells = np.concatenate([labels[:, None], np.floor_divide(points, 0.1).astype(int)], axis=1)
    segments = np.unique(cells, axis=0, return_inverse=True)[1].reshape(-1)
    segment_label = np.zeros(segments.max() + 1, int)
    segment_label[segments] = labels
    targets = [torch.from_numpy(np.stack([segment_label == 1, segment_label == 2]))]
    colors = rng.integers(0, 256, (len(points), 3)).astype(np.uint8)
    scene = Scene("toy", points, np.zeros((0, 3), np.int64), colors)

    # Instance norm: no running statistics, so a short training behaves the same in eval mode.
    backbone = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 8, 8), layers=(1,) * 8, init_dim=8, stem_kernel=3,
                              norm="instance")
    decoder = DecoderConfig(level_channels=(16, 8, 8, 8), hidden_dim=16, num_heads=2, ffn_dim=32, num_queries=6,
                            sample_sizes=(50, 100, 200, 400))
    config = Mask3DConfig(backbone, decoder)
    model = build_mask3d(config, seed=0)
    scan = scan_input(scene, segments, config)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(100):
        loss, _ = set_criterion(model([scan]).predictions, targets, LossConfig(drop_loss=False))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    result = predict_scene(model, scene, segments)
    best_iou = []
    for instance in (1, 2):
        truth = labels == instance
        best_iou.append(max((m & truth).sum() / (m | truth).sum() for m in result.masks[:2]))
    assert min(best_iou) > 0.9
    assert result.scores[1] > 0.5
