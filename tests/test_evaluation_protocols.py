"""Evaluation protocols (which ground-truth instances count) and the precision/recall curves of the report,
on cases small enough to solve by hand."""

import math

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.evaluation import (
    ALL_THRESHOLDS,
    ap_per_threshold,
    average_precision,
    evaluate_scenes,
    get_protocol,
    match_scenes,
    pooled_curves,
    precision_recall_curve,
)
from unscene3d.instances import Instances

# Blocks of 200 vertices: a wall (NYU40 1), a chair (5), a lamp (35: not a ScanNet benchmark class),
# a ceiling (22) and an object with an instance id but no class (label 0).
BLOCKS = {"wall": 1001, "chair": 5002, "lamp": 35003, "ceiling": 22004, "unlabelled": 5}
SIZE = 200
GT = np.repeat(np.array(list(BLOCKS.values()), dtype=np.int64), SIZE)


def block(name: str) -> np.ndarray:
    mask = np.zeros(len(GT), dtype=bool)
    index = list(BLOCKS).index(name)
    mask[index * SIZE : (index + 1) * SIZE] = True
    return mask


def ap50(names: list[str], protocol: str) -> float:
    """AP50 as a fraction (the API gives percent)."""
    masks = np.array([block(name) for name in names], dtype=bool).reshape(len(names), len(GT))
    scores = np.linspace(0.9, 0.5, len(names))
    return evaluate_scenes([("s", Instances(masks, scores), GT)], protocol=protocol).overall["AP50"] / 100


@pytest.mark.parametrize(
    ("protocol", "counted"),
    [("scannet", {"chair"}), ("class-agnostic", {"chair", "lamp", "unlabelled"}), ("all", set(BLOCKS))],
)
def test_protocols_count_the_instances_they_name(protocol, counted):
    # Predicting exactly the counted instances is perfect; each missed one lowers recall.
    assert ap50(sorted(counted), protocol) == pytest.approx(1.0)
    missing_one = sorted(counted)[1:]
    expected = 0.0 if not missing_one else len(missing_one) / len(counted)
    assert ap50(missing_one, protocol) == pytest.approx(expected)
    # Predictions on instances that do not count lie on void: ignored, neither true nor false.
    uncounted = sorted(set(BLOCKS) - counted)
    assert ap50(sorted(counted) + uncounted, protocol) == pytest.approx(1.0)


def test_structure_is_an_object_only_under_all():
    # The wall is void under the ScanNet and class-agnostic rules (its prediction is ignored) and an
    # instance like any other under `all`.
    names = ["wall", "chair"]
    assert ap50(names, "scannet") == pytest.approx(1.0)
    assert ap50(names, "class-agnostic") == pytest.approx(1 / 3)  # chair found (1 of 3), wall ignored
    # all: 5 instances, examples (wall 0.9, TP) (chair 0.5, TP): both true, recall 2/5.
    assert ap50(names, "all") == pytest.approx(2 / 5)


def test_protocol_names_and_custom_classes():
    assert get_protocol("scannet").counts(np.array([1, 5, 35])).tolist() == [False, True, False]
    assert get_protocol("class-agnostic").counts(np.array([0, 1, 2, 22, 35])).tolist() == [
        True, False, False, False, True]
    assert get_protocol("all").counts(np.array([0, 1, 22])).all()
    assert get_protocol("all", valid_class_ids=[1]).counts(np.array([1, 5])).tolist() == [True, False]
    with pytest.raises(InputError, match="protocol must be one of"):
        get_protocol("scannet200")
    result = evaluate_scenes([("s", Instances(block("chair")[None], [0.5]), GT)], protocol="all")
    assert result.protocol == "all" and result.to_json()["protocol"] == "all"


def test_precision_recall_curve_by_hand():
    # Two ground-truth instances; ranked TP 0.9, FP 0.8, TP 0.7.
    precision, recall = precision_recall_curve(np.array([1.0, 0.0, 1.0]), np.array([0.9, 0.8, 0.7]), 0)
    # Points in increasing score: >= 0.7: 2/3 at recall 1; >= 0.8: 1/2 at 1/2; >= 0.9: 1 at 1/2; then (0, 1).
    np.testing.assert_allclose(precision, [2 / 3, 1 / 2, 1.0, 1.0])
    np.testing.assert_allclose(recall, [1.0, 0.5, 0.5, 0.0])
    # Recall gaps (r_{i-1} - r_{i+1}) / 2 with r_{-1} = r_0: 0.25 each.
    assert average_precision(np.array([1.0, 0.0, 1.0]), np.array([0.9, 0.8, 0.7]), 0) == pytest.approx(
        100 * 0.25 * (2 / 3 + 1 / 2 + 1 + 1))  # percent
    # A missed instance (hard false negative) halves every recall.
    _, recall = precision_recall_curve(np.array([1.0]), np.array([0.5]), 1)
    np.testing.assert_allclose(recall, [0.5, 0.0])


def test_pooled_curves_and_ap_per_iou():
    # One prediction covering the chair and 100 vertices of the wall: IoU 200 / 300 = 2/3 with the chair.
    chair_and_half_wall = block("chair") | (block("wall") & (np.arange(len(GT)) >= SIZE // 2))
    matches = match_scenes([("s", Instances(chair_and_half_wall[None], [0.7]), GT)], protocol="all")
    aps = ap_per_threshold(list(matches.values()))
    assert list(aps) == list(ALL_THRESHOLDS)
    for threshold, ap in aps.items():
        # Found at IoU thresholds below 2/3 (1 of 5 instances: AP 20 %), a false positive above (AP 0).
        assert ap == pytest.approx(20.0 if threshold < 2 / 3 else 0.0), threshold
    curves = pooled_curves(list(matches.values()))
    precision, recall = curves[0.5]
    np.testing.assert_allclose(precision, [1.0, 1.0])
    np.testing.assert_allclose(recall, [0.2, 0.0])
    precision, recall = curves[ALL_THRESHOLDS[-2]]  # 0.95
    np.testing.assert_allclose(precision, [0.0, 1.0])
    np.testing.assert_allclose(recall, [0.0, 0.0])


def test_no_counted_ground_truth_has_no_curve():
    walls = np.full(300, 1001, dtype=np.int64)
    matches = match_scenes([("s", Instances(np.ones((1, 300), dtype=bool), [1.0]), walls)])
    assert pooled_curves(list(matches.values())) == {}
    assert all(math.isnan(ap) for ap in ap_per_threshold(list(matches.values())).values())
