"""Hungarian matcher and self-training losses on hand-built and hand-computed cases."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unscene3d.model.losses import (
    LossConfig,
    binary_mask_iou,
    dice_loss,
    drop_loss_keep,
    output_losses,
    set_criterion,
    sigmoid_bce,
)
from unscene3d.model.matcher import MatcherConfig, assign, hungarian_match, matching_cost, pairwise_bce, pairwise_dice


@dataclass
class Prediction:
    class_logits: torch.Tensor
    mask_logits: list[torch.Tensor]


def test_assign_finds_the_minimum_cost_permutation():
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    rows, cols = assign(cost)
    # Greedy (smallest entry first) would pay 0 + 3 + 3 = 6; the optimum pays 1 + 2 + 2 = 5.
    assert rows.tolist() == [0, 1, 2]
    assert cols.tolist() == [1, 0, 2]
    assert cost[rows, cols].sum() == 5.0


def test_assign_with_more_queries_than_targets_picks_the_cheapest_query():
    rows, cols = assign(torch.tensor([[3.0], [0.5], [2.0]]))
    assert rows.tolist() == [1] and cols.tolist() == [0]


def test_assign_and_match_with_zero_targets_are_empty():
    rows, cols = assign(np.zeros((5, 0)))
    assert rows.shape == cols.shape == (0,)
    q, t = hungarian_match(torch.zeros(5, 2), torch.zeros(5, 7), torch.zeros(0, 7, dtype=torch.bool))
    assert q.shape == t.shape == (0,) and q.dtype == np.int64


def test_match_recovers_a_permutation_of_the_targets():
    targets = torch.zeros(3, 9, dtype=torch.bool)
    targets[0, 0:3] = targets[1, 3:6] = targets[2, 6:9] = True
    order = [2, 0, 1]  # query i predicts target order[i]; query 3 predicts nothing
    logits = torch.full((4, 9), -8.0)
    for query, target in enumerate(order):
        logits[query, targets[target]] = 8.0
    q, t = hungarian_match(torch.zeros(4, 2), logits, targets)
    assert dict(zip(q.tolist(), t.tolist())) == {0: 2, 1: 0, 2: 1}


def test_pairwise_costs_match_elementwise_definitions():
    torch.manual_seed(0)
    logits, targets = torch.randn(4, 10), torch.rand(3, 10) > 0.5
    bce = pairwise_bce(logits, targets)
    dice = pairwise_dice(logits, targets)
    for q in range(4):
        for t in range(3):
            expected_bce = F.binary_cross_entropy_with_logits(logits[q], targets[t].float())
            assert bce[q, t] == pytest.approx(float(expected_bce), rel=1e-5)
            assert dice[q, t] == pytest.approx(float(dice_loss(logits[q:q + 1], targets[t:t + 1])[0]), rel=1e-5)


def test_matching_cost_weights_the_three_terms():
    logits, targets = torch.zeros(1, 4), torch.tensor([[True, True, False, False]])
    class_logits = torch.tensor([[math.log(3.0), 0.0]])  # p_fg = 0.75
    cost = matching_cost(class_logits, logits, targets, MatcherConfig())
    # logit 0: BCE = ln 2 everywhere; Dice = 1 - (2*1 + 1) / (2 + 2 + 1) = 0.4.
    assert float(cost[0, 0]) == pytest.approx(2 * -0.75 + 5 * math.log(2) + 2 * 0.4, rel=1e-6)


def test_bce_and_dice_hand_values():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    targets = torch.tensor([[1.0, 1.0]])
    # BCE(0, 1) = ln 2; BCE(ln 3, 1) = -ln(3/4).
    assert float(sigmoid_bce(logits, targets)[0]) == pytest.approx((math.log(2) - math.log(0.75)) / 2, rel=1e-6)
    half = torch.zeros(1, 4)
    assert float(dice_loss(half, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))[0]) == pytest.approx(0.4, rel=1e-6)
    exact = torch.tensor([[30.0, 30.0, -30.0, -30.0]])
    assert float(dice_loss(exact, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))[0]) == pytest.approx(0.0, abs=1e-6)


def test_binary_mask_iou():
    logits = torch.tensor([[1.0, 1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
    targets = torch.tensor([[True, False, True, False], [False, False, False, False]])
    assert binary_mask_iou(logits, targets).tolist() == pytest.approx([1 / 3, 0.0])


def test_class_loss_weights_no_object_by_a_tenth():
    class_logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]]])
    targets = [torch.tensor([[True, False]])]
    masks = [torch.tensor([[9.0, -9.0], [-9.0, 9.0], [-9.0, 9.0]])]  # query 0 matches the target
    terms = output_losses(Prediction(class_logits, masks), targets, LossConfig(drop_loss=False))
    nll = -torch.log_softmax(class_logits[0], -1)
    expected = (1.0 * nll[0, 0] + 0.1 * nll[1, 1] + 0.1 * nll[2, 1]) / (1.0 + 0.1 + 0.1)
    assert float(terms.ce) == pytest.approx(float(expected), rel=1e-6)
    assert float(terms.bce) == pytest.approx(float(sigmoid_bce(masks[0][:1], targets[0].float())[0]), rel=1e-6)


def test_novel_queries_leave_the_class_loss():
    # 4 units, one target {0, 1}; query 0 matches it, query 1 predicts {3} (IoU 0 with the target: novel),
    # query 2 predicts {1, 2} (IoU 1/3: overlaps the target, so it stays no-object), query 3 predicts nothing
    class_logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.3, 0.2]]])
    targets = [torch.tensor([[True, True, False, False]])]
    masks = [torch.tensor([[9.0, 9.0, -9.0, -9.0], [-9.0, -9.0, -9.0, 9.0], [-9.0, 9.0, 9.0, -9.0],
                           [-9.0, -9.0, -9.0, -9.0]])]
    config = LossConfig(drop_loss=False, ignore_novel=True)
    terms = output_losses(Prediction(class_logits, masks), targets, config)
    nll = -torch.log_softmax(class_logits[0], -1)
    expected = (1.0 * nll[0, 0] + 0.1 * nll[2, 1] + 0.1 * nll[3, 1]) / (1.0 + 0.1 + 0.1)  # query 1 left out
    assert float(terms.ce) == pytest.approx(float(expected), rel=1e-6)
    plain = output_losses(Prediction(class_logits, masks), targets, LossConfig(drop_loss=False))
    assert float(plain.ce) != pytest.approx(float(expected), rel=1e-3)


def _drop_case():
    """Three disjoint targets; query i is built to match target i with IoU 0.5, 0.01 and 0 (query 2 predicts
    one unit of target 0's area instead: another object, as DropLoss has in mind)."""
    targets = torch.zeros(3, 300, dtype=torch.bool)
    for t in range(3):
        targets[t, 100 * t:100 * (t + 1)] = True
    logits = torch.full((3, 300), -5.0)
    logits[0, 0:50] = 5.0
    logits[1, 100] = 5.0
    logits[1, 101:200] = -0.5
    logits[2, 200:300] = -0.5
    logits[2, 0] = 5.0
    return Prediction(torch.zeros(1, 3, 2), [logits]), [targets]


def test_droploss_drops_exactly_the_pairs_under_threshold():
    prediction, targets = _drop_case()
    q, t = hungarian_match(prediction.class_logits[0], prediction.mask_logits[0], targets[0])
    assert q.tolist() == t.tolist() == [0, 1, 2]
    logits, masks = prediction.mask_logits[0], targets[0]
    assert binary_mask_iou(logits, masks).tolist() == pytest.approx([0.5, 0.01, 0.0])
    per_pair_bce = sigmoid_bce(logits, masks)
    per_pair_dice = dice_loss(logits, masks)

    all_pairs = output_losses(prediction, targets, LossConfig(drop_loss=False))
    assert (all_pairs.kept, all_pairs.dropped) == (3, 0)
    assert float(all_pairs.bce) == pytest.approx(float(per_pair_bce.sum()) / 3, rel=1e-6)

    dropped = output_losses(prediction, targets, LossConfig(tau_drop=0.01))
    assert (dropped.kept, dropped.dropped) == (2, 1)  # IoU 0.01 reaches the threshold: kept
    assert float(dropped.bce) == pytest.approx(float(per_pair_bce[:2].sum()) / 3, rel=1e-6)
    assert float(dropped.dice) == pytest.approx(float(per_pair_dice[:2].sum()) / 3, rel=1e-6)
    assert float(dropped.ce) == pytest.approx(float(all_pairs.ce))  # the class term is untouched

    stricter = output_losses(prediction, targets, LossConfig(tau_drop=0.2))
    assert (stricter.kept, stricter.dropped) == (1, 2)
    assert float(stricter.bce) == pytest.approx(float(per_pair_bce[0]) / 3, rel=1e-6)


def test_droploss_never_drops_an_empty_prediction():
    prediction, targets = _drop_case()
    prediction.mask_logits[0][2, 0] = -5.0  # query 2 now predicts nothing at all
    terms = output_losses(prediction, targets, LossConfig(tau_drop=0.01))
    assert (terms.kept, terms.dropped) == (3, 0)
    assert drop_loss_keep(prediction.mask_logits[0], targets[0], 0.01).tolist() == [True, True, True]


def test_droploss_is_on_by_default_with_tau_0_01():
    config = LossConfig()
    assert config.drop_loss and config.tau_drop == 0.01
    assert (config.class_weight, config.bce_weight, config.dice_weight, config.no_object_weight) == (2, 5, 2, 0.1)


def test_criterion_sums_every_decoder_output_and_backpropagates():
    torch.manual_seed(0)
    class_logits = torch.randn(2, 4, 2, requires_grad=True)
    masks = [torch.randn(4, 6, requires_grad=True), torch.randn(4, 5, requires_grad=True)]
    targets = [torch.rand(2, 6) > 0.5, torch.zeros(0, 5, dtype=torch.bool)]  # second scene: no targets
    prediction = Prediction(class_logits, masks)
    config = LossConfig(drop_loss=False)
    single, _ = set_criterion([prediction], targets, config)
    terms = output_losses(prediction, targets, config)
    expected = 2 * terms.ce + 5 * terms.bce + 2 * terms.dice
    assert float(single.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    total, log = set_criterion([prediction, prediction, prediction], targets, config)
    assert float(total.detach()) == pytest.approx(3 * float(single.detach()), rel=1e-6)
    assert log["loss"] == pytest.approx(float(total.detach()), rel=1e-6)
    total.backward()
    assert class_logits.grad.abs().sum() > 0 and masks[0].grad.abs().sum() > 0
    # The scene without targets gets no mask gradient, only the no-object class one.
    assert masks[1].grad is None or masks[1].grad.abs().sum() == 0
    assert class_logits.grad[1].abs().sum() > 0


def test_batch_without_any_target_gives_zero_mask_losses():
    prediction = Prediction(torch.zeros(1, 3, 2), [torch.zeros(3, 4)])
    terms = output_losses(prediction, [torch.zeros(0, 4, dtype=torch.bool)], LossConfig())
    assert float(terms.bce) == float(terms.dice) == 0.0
    assert float(terms.ce) == pytest.approx(math.log(2), rel=1e-6)


def test_targets_over_other_units_are_rejected():
    prediction = Prediction(torch.zeros(1, 3, 2), [torch.zeros(3, 4)])
    with pytest.raises(ValueError, match="mask units"):
        output_losses(prediction, [torch.zeros(2, 5, dtype=torch.bool)], LossConfig())
