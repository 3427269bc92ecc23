"""The ranker's views and its self-training on unlabelled scans, on cases solvable by hand."""

from __future__ import annotations

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.proposals.features import FEATURE_NAMES, VIEWS
from unscene3d.proposals.ranker import Ranker, RankerConfig, load_ranker
from unscene3d.proposals.self_training import (
    SelfTrainingConfig,
    confident_masks,
    nearest_iou,
    pseudo_targets,
    self_train_round,
)

SHAPE, BORDER = FEATURE_NAMES.index("log_area"), FEATURE_NAMES.index("isolation")
LINEAR = RankerConfig(hidden=1, layers=0, dropout=0.0, ensemble=1)  # one linear layer: logit = w . x + b


def linear(weights: dict[int, float], bias: float) -> list[tuple[np.ndarray, np.ndarray]]:
    weight = np.zeros((1, len(FEATURE_NAMES)), np.float32)
    for index, value in weights.items():
        weight[0, index] = value
    return [(weight, np.array([bias], np.float32))]


@pytest.fixture
def ranker() -> Ranker:
    """Features unstandardised (mean 0, std 1). The ranker's logit is 10 (a + b - 1) with a the shape view's
    feature and b the border view's; each view's is 10 (x - 0.5) of its own feature."""
    zero, one = np.zeros(len(FEATURE_NAMES)), np.ones(len(FEATURE_NAMES))
    full = Ranker([linear({SHAPE: 10.0, BORDER: 10.0}, -10.0)], zero, one, LINEAR)
    full.views = {"shape": full.view("shape", [linear({SHAPE: 10.0, BORDER: 10.0}, -5.0)]),
                  "border": full.view("border", [linear({SHAPE: 10.0, BORDER: 10.0}, -5.0)])}
    return full


@pytest.fixture
def scan() -> dict[str, np.ndarray]:
    """Three disjoint candidates over three segments of 150 vertices: (a, b) = (1, 1), (1, 0.4), (0, 0)."""
    features = np.zeros((3, len(FEATURE_NAMES)), np.float32)
    features[:, SHAPE] = [1.0, 1.0, 0.0]
    features[:, BORDER] = [1.0, 0.4, 0.0]
    return {"features": features, "masks": np.packbits(np.eye(3, dtype=bool), axis=1), "num_segments": np.array(3),
            "labels": np.repeat(np.arange(3), 150).astype(np.int32)}


def test_a_view_ranker_reads_only_its_features(ranker: Ranker) -> None:
    features = np.zeros((1, len(FEATURE_NAMES)))
    features[0, SHAPE], features[0, BORDER] = 1.0, 0.4
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    # both views hold the same weights on both features, yet each sees only its own
    assert ranker.views["shape"].score(features)[0] == pytest.approx(sigmoid(10 * 1.0 - 5))
    assert ranker.views["border"].score(features)[0] == pytest.approx(sigmoid(10 * 0.4 - 5))
    assert ranker.score(features)[0] == pytest.approx(sigmoid(10 * 1.4 - 10))
    assert set(VIEWS["shape"]).isdisjoint(VIEWS["border"]) and len(VIEWS["shape"]) + len(VIEWS["border"]) == \
        len(FEATURE_NAMES)


def test_the_views_travel_in_the_ranker_file_and_a_file_without_them_loads(ranker: Ranker, tmp_path) -> None:
    features = np.random.default_rng(0).normal(size=(4, len(FEATURE_NAMES)))
    ranker.save(tmp_path / "views.safetensors")
    loaded = load_ranker(tmp_path / "views.safetensors")
    assert sorted(loaded.views) == ["border", "shape"]
    for name, view in ranker.views.items():
        assert np.allclose(loaded.views[name].score(features), view.score(features))
    assert np.allclose(loaded.score(features), ranker.score(features))
    plain = Ranker(ranker.members, ranker.feature_mean, ranker.feature_std, LINEAR)
    plain.save(tmp_path / "plain.safetensors")
    assert load_ranker(tmp_path / "plain.safetensors").views == {}


def test_a_mask_is_trusted_only_when_the_ranker_and_every_view_agree(ranker: Ranker, scan) -> None:
    # candidate 1: the ranker says 0.98, the shape view 0.99, the border view 0.27: not trusted
    assert confident_masks(ranker, scan, SelfTrainingConfig()).tolist() == [0]
    assert sorted(confident_masks(ranker, scan, SelfTrainingConfig(agreement=False)).tolist()) == [0, 1]
    without_views = Ranker(ranker.members, ranker.feature_mean, ranker.feature_std, LINEAR)
    with pytest.raises(InputError, match="no view rankers"):
        confident_masks(without_views, scan, SelfTrainingConfig())


def test_nearest_iou_by_hand() -> None:
    sizes = np.array([1.0, 2.0, 3.0])
    masks = np.array([[True, True, False], [False, False, True]])
    others = np.array([[False, True, True]])
    # {0, 1} (3 vertices) and {1, 2} (5) share 2 of 6; {2} (3) lies inside {1, 2}: 3 of 5
    assert np.allclose(nearest_iou(masks, others, sizes), [2 / 6, 3 / 5])
    assert np.array_equal(nearest_iou(masks, others[:0], sizes), [0.0, 0.0])


def test_pseudo_targets_by_hand(ranker: Ranker, scan) -> None:
    confident = np.array([0])
    # ignore: the confident mask 1; candidate 1 (the ranker's 0.98, no confident mask near it) carries no weight;
    # candidate 2 (the ranker's 5e-5 < 0.02) is a negative
    targets, weights = pseudo_targets(ranker, scan, confident, SelfTrainingConfig())
    assert targets.tolist() == [1.0, 0.0, 0.0] and weights.tolist() == [1.0, 0.0, 1.0]
    targets, weights = pseudo_targets(ranker, scan, confident, SelfTrainingConfig(rule="hard"))
    assert targets.tolist() == [1.0, 0.0, 0.0] and weights.tolist() == [1.0, 1.0, 1.0]


def test_a_round_is_deterministic_keeps_the_views_and_records_itself(ranker: Ranker, scan) -> None:
    rng = np.random.default_rng(1)
    replay = [{"features": rng.normal(size=(40, len(FEATURE_NAMES))).astype(np.float32),
               "targets": rng.uniform(size=40).astype(np.float32)}]
    config = SelfTrainingConfig(epochs=2)
    first = self_train_round(ranker, [scan, scan], replay, config)
    again = self_train_round(ranker, [scan, scan], replay, config)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(first.members[0], again.members[0]))
    assert not np.array_equal(first.members[0][0][0], ranker.members[0][0][0])
    assert first.views is ranker.views  # they check the ranker and are not taught by it
    assert first.info["self_trained"]["round"] == 1 and first.info["self_trained"]["confident_masks"] == [1, 1]
    assert self_train_round(first, [scan], replay, config).info["self_trained"]["round"] == 2
