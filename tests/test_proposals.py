"""Candidate masks, their features and the ranker's selection on cases solvable by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from unscene3d.oversegment_points import felzenszwalb_scales, oversegment_scene
from unscene3d.proposals.candidates import ProposalConfig, majority_segments, propose
from unscene3d.proposals.features import FEATURE_NAMES, candidate_features
from unscene3d.proposals.ranker import Ranker, RankerConfig, SelectionConfig, load_ranker, select_candidates
from unscene3d.proposals.training import (
    RankerNet,
    TrainingConfig,
    candidate_targets,
    fit_ranker,
    member_nets,
    train_members,
)
from unscene3d.pseudo.pipeline import segment_scene
from unscene3d.scene import Scene
from unscene3d.segments import describe_segments
from unscene3d.synthetic import make_synthetic_scene


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


@pytest.fixture(scope="module")
def room() -> Scene:
    return make_synthetic_scene(3, vertex_spacing=0.06)


def test_felzenszwalb_scales_equal_one_run_per_scale(room: Scene) -> None:
    cloud = Scene("cloud", room.vertices, np.zeros((0, 3), np.int64), room.colors)
    scales = [(0.02, 100), (0.2, 300)]
    for scene in (room, cloud):
        for labels, (k, m) in zip(felzenszwalb_scales(scene, scales), scales):
            single = oversegment_scene(scene, variant="scannet", k_thresh=k, min_verts=m).labels
            assert same_partition(labels, single)
        if scene.has_faces:  # the mesh path numbers segments exactly as oversegment does
            assert np.array_equal(felzenszwalb_scales(scene, scales[:1])[0],
                                  oversegment_scene(scene, variant="scannet", k_thresh=0.02, min_verts=100).labels)


def test_majority_segments_by_hand() -> None:
    # base segments 0 (3 vertices), 1 (2), 2 (1); coarse labels 7 and 9
    base = np.array([0, 0, 0, 1, 1, 2])
    coarse = np.array([7, 7, 9, 9, 9, 9])
    masks = majority_segments(base, coarse, 3)
    assert masks.tolist() == [[True, False, False], [False, True, True]]
    # a coarse segment that wins no base segment is dropped
    assert majority_segments(np.array([0, 0, 0]), np.array([1, 1, 2]), 1).tolist() == [[True]]


def test_candidate_targets_by_hand() -> None:
    # 3 segments of 2 vertices each; object 5001 covers segment 0 and half of segment 1; wall 1002 segment 2
    labels = np.repeat([0, 1, 2], 2)
    gt = np.array([5001, 5001, 5001, 0, 1002, 1002])
    masks = np.array([[True, False, False], [True, True, False], [False, False, True]])
    targets = candidate_targets(masks, labels, gt, min_points=1)
    assert targets == pytest.approx([2 / 3, 3 / 4, 0.0])  # the wall is no object


def test_select_candidates_suppresses_overlaps_and_low_scores() -> None:
    masks = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=bool)
    sizes = np.full(4, 100.0)
    scores = np.array([0.9, 0.8, 0.7, 0.01])
    kept = select_candidates(masks, scores, sizes, SelectionConfig(nms_iou=0.5, min_score=0.05))
    assert kept.tolist() == [0, 2]  # mask 1 has IoU 2/3 with mask 0; mask 3 scores too low
    assert select_candidates(masks, scores, sizes, SelectionConfig(max_masks=1)).tolist() == [0]
    # segments of 60 vertices: a one-segment mask is under min_points (100), a two-segment one is not
    assert select_candidates(masks, scores, np.full(4, 60.0), SelectionConfig(min_score=0.0)).tolist() == [0, 2]
    assert select_candidates(masks[3:], scores[3:], np.full(4, 60.0), SelectionConfig(min_score=0.0)).tolist() == []


def test_candidates_and_features_of_a_room(room: Scene) -> None:
    segmentation = segment_scene(room)
    segments = describe_segments(room, segmentation.labels, segmentation.num_segments)
    config = ProposalConfig(scales=((0.05, 300), (0.2, 1000)))
    candidates = propose(room, segments, config)
    assert len(np.unique(np.packbits(candidates.masks, axis=1), axis=0)) == len(candidates)  # no duplicates
    assert (candidates.from_cut | candidates.from_scale.any(axis=1)).all()
    assert not candidates.masks[candidates.from_cut][:, segments.is_structure].any()  # the tree skips structure
    features = candidate_features(segments, candidates, config)
    assert features.shape == (len(candidates), len(FEATURE_NAMES)) and np.isfinite(features).all()
    area = features[:, FEATURE_NAMES.index("log_area")]
    whole = candidates.masks.all(axis=1)
    if whole.any():
        assert np.exp(area[whole]) == pytest.approx(segments.geometry.area.sum())
    # the best candidate covers the room's objects well: the sources carry whole objects
    assert candidate_targets(candidates.masks, segments.labels, room.gt).max() > 0.8


def test_ranker_file_round_trip_and_numpy_matches_torch(tmp_path) -> None:
    import torch

    config = RankerConfig(hidden=8, layers=1, ensemble=2)
    nets = [RankerNet(len(FEATURE_NAMES), config).eval() for _ in range(2)]
    mean, std = np.full(len(FEATURE_NAMES), 0.5), np.full(len(FEATURE_NAMES), 2.0)
    ranker = Ranker([net.as_layers() for net in nets], mean, std, config, info={"seed": 3})
    ranker.save(tmp_path / "r.safetensors")
    loaded = load_ranker(tmp_path / "r.safetensors")
    features = np.random.default_rng(0).normal(size=(5, len(FEATURE_NAMES)))
    with torch.no_grad():
        inputs = torch.from_numpy(((features - mean) / std).astype(np.float32))
        expected = torch.stack([torch.sigmoid(net(inputs)) for net in nets]).mean(dim=0).numpy()
    assert np.allclose(loaded.score(features), expected, atol=1e-6)
    assert loaded.info == {"seed": 3} and loaded.config == config
    # the members come back as torch networks with the same outputs, to train further
    rebuilt = member_nets(loaded)
    with torch.no_grad():
        again = torch.stack([torch.sigmoid(net.eval()(inputs)) for net in rebuilt]).mean(dim=0).numpy()
    assert np.allclose(again, expected, atol=1e-6)


def test_training_members_learns_a_rule_and_warm_start_keeps_the_standardisation() -> None:
    # the target is 1 where the first feature is positive: a trained ranker must order the candidates by it
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, len(FEATURE_NAMES)))
    targets = (features[:, 0] > 0).astype(np.float64)
    config = TrainingConfig(epochs=30, batch_size=64, learning_rate=1e-2,
                            ranker=RankerConfig(hidden=16, layers=1, ensemble=2))
    ranker = fit_ranker(features, targets, config)
    assert np.mean((ranker.score(features) > 0.5) == targets) > 0.95
    # further training on the opposite rule, examples of the first half weighted 0: it follows the second half only
    weights = np.r_[np.zeros(300), np.ones(300)]
    flipped = train_members(ranker, features, 1 - targets, replace(config, epochs=40), weights=weights, warm_start=True)
    assert np.array_equal(flipped.feature_mean, ranker.feature_mean)
    assert np.mean((flipped.score(features[300:]) > 0.5) == (1 - targets[300:])) > 0.95


def test_the_shipped_ranker_is_what_train_ranker_makes_with_no_options() -> None:
    shipped = load_ranker()
    info = shipped.info
    assert info["training"] == TrainingConfig().to_dict(), "remake it: unscene3d train-ranker -o FILE (see docs)"
    assert info["command"].startswith("unscene3d train-ranker")
    assert not any(option in info["command"] for option in ("--scenes", "--epochs", "--seed", "--validation"))
    assert info["validation"]["AP50"] > 50  # on generated scenes never trained on
    assert shipped.proposals == ProposalConfig() and shipped.selection == SelectionConfig()
    assert shipped.path.stat().st_size <= 20 * 2**20


def test_a_scan_far_larger_than_a_room_is_ranked_with_a_warning(caplog) -> None:
    import logging

    from unscene3d.proposals.ranker import rank_scan

    rng = np.random.default_rng(0)
    ground = np.c_[rng.uniform(0, 30, (3000, 2)), rng.normal(0, 0.01, 3000)]  # 30 m of flat ground, no room
    scene = Scene("field", ground, np.zeros((0, 3), np.int64))
    with caplog.at_level(logging.WARNING):
        rank_scan(scene, load_ranker())
    assert "30 m across, larger than any room" in caplog.text
