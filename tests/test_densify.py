"""Densification between rounds on constructed masks."""

from __future__ import annotations

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.instances import Instances
from unscene3d.train.densify import DensifyConfig, densify_scan, greedy_nms


def span(start: int, stop: int, size: int = 100) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[start:stop] = True
    return mask


def test_defaults_are_the_papers_constants():
    config = DensifyConfig()
    assert (config.min_score, config.nms_overlap, config.max_added, config.min_uncovered_fraction) == (
        0.1, 0.66, 5, 0.5)


def test_nms_uses_overlap_relative_to_the_lower_scored_mask():
    big = span(0, 60)
    inside = span(10, 20)  # fully inside big: |i ∩ j| / |j| = 1 -> suppressed
    straddling = span(40, 100)  # 20 of 60 inside big: 0.33 -> kept
    mostly = span(50, 80)  # 10 of 30 in big, 30 of 30 in straddling -> suppressed by straddling
    masks = np.stack([inside, big, straddling, mostly])
    kept = greedy_nms(masks, np.array([0.5, 0.9, 0.8, 0.7]), 0.66)
    assert kept.tolist() == [1, 2]


def test_nms_threshold_is_strict():
    big, small = span(0, 50), span(0, 34)  # big ∩ small / |big| = 0.68 but small scores higher
    kept = greedy_nms(np.stack([small, big]), np.array([0.9, 0.5]), 0.66)
    assert kept.tolist() == [0]  # big is suppressed: 34/50 = 0.68 > 0.66
    exactly = greedy_nms(np.stack([span(0, 33), big]), np.array([0.9, 0.5]), 0.66)
    assert exactly.tolist() == [0, 1]  # 33/50 = 0.66 is not above the threshold


def test_only_confident_predictions_and_only_uncovered_parts_are_added():
    pseudo = np.stack([span(0, 30)])
    predictions = np.stack([
        span(20, 60),  # 10 of 40 covered -> 75% new -> add units 30..59
        span(80, 90),  # score below 0.1 -> ignored
        span(55, 75),  # after the first: 5 of 20 covered -> add 60..74
        span(0, 40),  # 40 of 40 covered by now -> skipped
    ])
    result = densify_scan(pseudo, Instances(predictions, [0.9, 0.05, 0.8, 0.7]))
    assert result.source.tolist() == [0, 2]
    assert np.array_equal(result.masks[0], span(30, 60))
    assert np.array_equal(result.masks[1], span(60, 75))
    assert result.scores.tolist() == [0.9, 0.8]


def test_coverage_rule_needs_more_than_half_new():
    pseudo = np.stack([span(0, 10)])
    half_new = span(0, 20)  # exactly 50% uncovered -> not added
    more_than_half = span(5, 16)  # 6 of 11 uncovered -> added
    result = densify_scan(pseudo, Instances(np.stack([half_new]), [0.9]))
    assert result.masks.shape == (0, 100) and result.source.size == 0
    result = densify_scan(pseudo, Instances(np.stack([more_than_half]), [0.9]))
    assert np.array_equal(result.masks[0], span(10, 16))


def test_at_most_five_per_scan_in_score_order():
    predictions = np.stack([span(10 * i, 10 * i + 10) for i in range(8)])
    found = Instances(predictions, [0.2, 0.9, 0.3, 0.8, 0.4, 0.7, 0.5, 0.6])
    result = densify_scan(np.zeros((0, 100), dtype=bool), found)
    assert result.source.tolist() == [1, 3, 5, 7, 6]
    assert result.masks.shape == (5, 100)
    capped = densify_scan(np.zeros((0, 100), dtype=bool), found, DensifyConfig(max_added=2))
    assert capped.source.tolist() == [1, 3]


def test_suppressed_predictions_are_not_added_even_if_uncovered():
    predictions = np.stack([span(50, 70), span(50, 69)])  # second is inside the first
    result = densify_scan(np.zeros((0, 100), dtype=bool), Instances(predictions, [0.9, 0.8]))
    assert result.source.tolist() == [0]


def test_shape_mismatches_are_reported():
    with pytest.raises(InputError, match="units"):
        densify_scan(np.zeros((1, 9), bool), Instances(np.zeros((2, 10), bool), [0.5, 0.4]))
