import logging

import numpy as np

from unscene3d.progress import format_duration, progress_log
from unscene3d.visualize import UNLABELED_COLOR, label_colors, masks_to_labels


def test_label_colors_are_deterministic_and_grey_for_unlabeled():
    labels = np.array([5, -1, 5, 7, 123456])
    colors = label_colors(labels)
    assert colors.dtype == np.uint8 and colors.shape == (5, 3)
    np.testing.assert_array_equal(colors[0], colors[2])
    np.testing.assert_array_equal(colors[1], UNLABELED_COLOR)
    assert not np.array_equal(colors[0], colors[3])
    np.testing.assert_array_equal(label_colors(labels), colors)
    assert colors[[0, 3, 4]].min() >= 64  # no near-black colours
    first = label_colors(np.array([0]))[0]
    assert np.ptp(first) > 64  # the first instance is a colour, not a grey


def test_masks_to_labels_higher_score_wins_overlap():
    masks = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(masks_to_labels(masks, np.array([0.9, 0.1])), [0, 0, 1, -1])
    np.testing.assert_array_equal(masks_to_labels(masks, np.array([0.1, 0.9])), [0, 1, 1, -1])
    np.testing.assert_array_equal(masks_to_labels(masks), [0, 1, 1, -1])


def test_format_duration():
    assert format_duration(4.24) == "4.2s"
    assert format_duration(123) == "2m03s"
    assert format_duration(3723) == "1h02m03s"


def test_progress_log_yields_everything_and_reports_eta(caplog):
    caplog.set_level(logging.INFO)
    assert list(progress_log(["a", "b", "c"], "work")) == ["a", "b", "c"]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "work: 0/3"
    assert "work: 1/3" in messages[1] and "ETA" in messages[1]
    assert messages[-1].startswith("work: 3/3 done")
