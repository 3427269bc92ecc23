"""Inference post-processing: top-k, scores, segment voting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unscene3d.errors import InputError
from unscene3d.model.postprocess import PostprocessConfig, instances_from_logits


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def class_logits_for(p_foreground: list[float]) -> torch.Tensor:
    """(Q, 2) logits whose softmax gives exactly these foreground probabilities."""
    return torch.tensor([[logit(p), 0.0] for p in p_foreground])


def test_score_is_class_probability_times_mean_probability_inside_the_mask():
    masks = torch.tensor([
        [logit(0.9), logit(0.7), logit(0.2), logit(0.1)],  # inside: 0.9, 0.7 -> mean 0.8
        [logit(0.6), logit(0.4), logit(0.4), logit(0.4)],  # inside: 0.6
    ])
    result = instances_from_logits(class_logits_for([0.5, 0.9]), masks)
    assert result.queries.tolist() == [1, 0]  # 0.9 * 0.6 = 0.54 beats 0.5 * 0.8 = 0.4
    assert result.scores.tolist() == pytest.approx([0.54, 0.4], rel=1e-5)
    assert result.masks.tolist() == [[True, False, False, False], [True, True, False, False]]


def test_top_k_keeps_the_most_object_like_queries():
    masks = torch.full((4, 3), 5.0)
    result = instances_from_logits(class_logits_for([0.2, 0.8, 0.5, 0.9]), masks, config=PostprocessConfig(top_k=2))
    assert sorted(result.queries.tolist()) == [1, 3]


def test_segment_voting_uses_the_mean_probability_of_the_segment():
    segments = np.array([7, 7, 7, 3, 3, 9])
    probs = [0.9, 0.9, 0.2, 0.6, 0.3, 0.8]  # segment 7: mean 0.667 in; 3: 0.45 out; 9: 0.8 in
    masks = torch.tensor([[logit(p) for p in probs]])
    result = instances_from_logits(class_logits_for([1 - 1e-6]), masks, segments)
    assert result.masks.tolist() == [[True, True, True, False, False, True]]
    # The score averages over the voted mask, including its 0.2 vertex.
    assert result.scores[0] == pytest.approx(np.mean([0.9, 0.9, 0.2, 0.8]), rel=1e-4)
    unvoted = instances_from_logits(class_logits_for([1 - 1e-6]), masks)
    assert unvoted.masks.tolist() == [[True, True, False, True, False, True]]


def test_empty_masks_are_dropped_and_numpy_input_works():
    masks = np.array([[-3.0, -2.0], [2.0, -1.0]])
    result = instances_from_logits(np.array([[5.0, 0.0], [1.0, 0.0]]), masks)
    assert result.queries.tolist() == [1]
    assert result.masks.dtype == bool and result.scores.dtype == np.float64


def test_shape_errors_are_reported():
    with pytest.raises(InputError, match="mask logits"):
        instances_from_logits(torch.zeros(3, 2), torch.zeros(4, 5))
    with pytest.raises(InputError, match="segment ids"):
        instances_from_logits(torch.zeros(3, 2), torch.zeros(3, 5), np.zeros(4, dtype=np.int64))


def test_iou_nms_drops_duplicates_of_a_better_mask():
    # queries 0 and 1 predict the same 4 vertices up to one (IoU 3/5 = 0.6), query 2 another object
    masks = torch.full((3, 6), -5.0)
    masks[0, :4] = 5.0
    masks[1, 1:5] = 5.0
    masks[2, 5] = 5.0
    class_logits = torch.tensor([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    from unscene3d.model.postprocess import PostprocessConfig

    assert instances_from_logits(class_logits, masks).queries.tolist() == [0, 1, 2]
    kept = instances_from_logits(class_logits, masks, config=PostprocessConfig(nms_iou=0.5))
    assert kept.queries.tolist() == [0, 2]  # 0.6 > 0.5: the lower-scored duplicate goes
    loose = instances_from_logits(class_logits, masks, config=PostprocessConfig(nms_iou=0.7))
    assert loose.queries.tolist() == [0, 1, 2]
