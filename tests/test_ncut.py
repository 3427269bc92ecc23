"""Masked normalized cut on constructed segment graphs with known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.linalg

from unscene3d.pseudo.ncut import (
    NCutConfig,
    _fast_vector,
    _reference_vector,
    combined_affinity,
    cosine_similarity,
    masked_ncut,
    rejection_reason,
)


def group_features(sizes: list[int], dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features: one orthogonal direction per group, slightly perturbed; returns (features, group id)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    feats = np.eye(dim)[groups] + rng.normal(scale=0.01, size=(len(groups), dim))
    return feats, groups


def chain(indices: np.ndarray) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in zip(indices[:-1], indices[1:])]


def masks_as_sets(masks: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(m).tolist()) for m in masks]


@pytest.mark.parametrize("solver", ["fast", "reference"])
def test_two_cliques_joined_by_one_weak_edge_split_into_the_cliques(solver: str) -> None:
    feats, groups = group_features([6, 14])
    small, large = np.flatnonzero(groups == 0), np.flatnonzero(groups == 1)
    adjacency = chain(small) + chain(large) + [(int(small[-1]), int(large[0]))]
    result = masked_ncut(feats, adjacency, NCutConfig(solver=solver, max_iterations=1))
    assert masks_as_sets(result.masks) == [set(small.tolist())]
    assert 0.0 < result.eigenvalues[0] < 0.01  # only eps weights cross the cut


def test_flip_rule_turns_a_too_large_foreground_into_the_background() -> None:
    feats, groups = group_features([6, 14])
    adjacency = chain(np.arange(20))
    small, large = set(np.flatnonzero(groups == 0).tolist()), set(np.flatnonzero(groups == 1).tolist())
    # The foreground side is the small clique: 6/20 = 0.3 of the segments. No flip at 0.8 ...
    assert masks_as_sets(masked_ncut(feats, adjacency, NCutConfig(max_iterations=1)).masks) == [small]
    # ... but a flip when the limit is below 0.3: the mask becomes the large clique.
    flipped = masked_ncut(feats, adjacency, NCutConfig(max_iterations=1, flip_fraction=0.25))
    assert masks_as_sets(flipped.masks) == [large]


def test_disconnected_foreground_keeps_only_the_seed_part_then_finds_the_other() -> None:
    feats, groups = group_features([10, 20])
    part_a, part_b = np.arange(0, 5), np.arange(5, 10)  # same features, not adjacent to each other
    room = np.arange(10, 30)
    adjacency = chain(part_a) + chain(part_b) + chain(room) + [(4, 10), (5, 29)]
    result = masked_ncut(feats, adjacency, NCutConfig(max_iterations=2))
    found = masks_as_sets(result.masks)
    assert len(found) == 2
    assert sorted(found, key=min) == [set(part_a.tolist()), set(part_b.tolist())]


def test_mask_with_fewer_than_min_segments_is_rejected_and_masked_out() -> None:
    feats, groups = group_features([7, 20, 3])  # the 3-segment group touches only the big one
    result = masked_ncut(feats, chain(np.arange(30)), NCutConfig(max_iterations=2))
    assert masks_as_sets(result.masks) == [set(range(7))]
    assert result.log[1] == "cut 1: rejected, only 3 segments"
    # rejected, yet masked out: the next cut cannot return it again
    again = masked_ncut(feats, chain(np.arange(30)), NCutConfig(max_iterations=3))
    assert "only 3 segments" not in again.log[2]


def test_rejection_rules() -> None:
    config = NCutConfig()
    accepted = np.zeros(10, dtype=bool)
    accepted[:4] = True
    mostly_old = np.zeros(10, dtype=bool)
    mostly_old[1:6] = True  # 3 of 5 segments accepted before: 0.6 > 0.5
    assert "overlaps earlier masks" in rejection_reason(mostly_old, accepted, config)
    half_old = np.zeros(10, dtype=bool)
    half_old[2:6] = True  # exactly half: kept
    assert rejection_reason(half_old, accepted, config) == ""
    tiny = np.zeros(10, dtype=bool)
    tiny[7:10] = True
    assert "only 3 segments" in rejection_reason(tiny, accepted, config)


def test_loop_stops_when_segments_run_out() -> None:
    feats, _ = group_features([10, 12])
    result = masked_ncut(feats, chain(np.arange(22)), NCutConfig(max_iterations=20))
    assert result.iterations < 20
    assert "stop" in result.log[-1]
    assert masks_as_sets(result.masks) == [set(range(10))]
    # fewer segments than a mask needs: no cut at all
    tiny = masked_ncut(feats[:3], chain(np.arange(3)))
    assert tiny.iterations == 0 and tiny.masks.shape == (0, 3)


def test_fast_and_reference_vectors_agree_with_official_eigh() -> None:
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(120, 6)) + np.repeat(rng.normal(size=(6, 6)) * 2, 20, axis=0)
    remaining = np.ones(120, dtype=bool)
    remaining[rng.choice(120, 30, replace=False)] = False
    edges = combined_affinity([cosine_similarity(feats)], np.flatnonzero(remaining)) > 0.6
    v_ref, lam_ref = _reference_vector(edges, remaining, 1e-5)
    v_fast, lam_fast = _fast_vector(edges, remaining, 1e-5)
    assert lam_fast == pytest.approx(lam_ref, rel=1e-8)
    np.testing.assert_allclose(v_fast, v_ref, atol=1e-8 * np.abs(v_ref).max())
    # the masked segments share one value
    assert np.ptp(v_fast[~remaining]) == 0.0
    # and it is the official generalized eigenvector up to sign
    w = np.full((120, 120), 1e-5)
    w[np.ix_(remaining, remaining)] = np.where(edges, 1.0, 1e-5)
    d = np.diag(w.sum(1))
    _, vec = scipy.linalg.eigh(d - w, d, subset_by_index=[1, 2])
    assert abs(abs(vec[:, 0] @ d @ v_fast) - 1.0) < 1e-8


def test_two_modalities_average_their_affinities() -> None:
    feats, _ = group_features([6, 14])
    rng = np.random.default_rng(1)
    noise = rng.normal(size=feats.shape)
    both = masked_ncut([feats, feats], chain(np.arange(20)), NCutConfig(max_iterations=1))
    one = masked_ncut(feats, chain(np.arange(20)), NCutConfig(max_iterations=1))
    assert np.array_equal(both.masks, one.masks)
    with pytest.raises(ValueError):
        masked_ncut([feats, noise[:5]], chain(np.arange(20)))


def test_scores_follow_discovery_order() -> None:
    feats, _ = group_features([5, 6, 7, 8])
    result = masked_ncut(feats, chain(np.arange(26)))
    scores = result.scores()
    assert len(scores) == len(result.masks)
    assert np.all(np.diff(scores) < 0) and scores[0] == 1.0


@pytest.mark.parametrize("options", [{}, {"masked_rejoin": True}, {"isolate_masked": True}])
def test_fast_and_reference_solvers_give_identical_masks_over_the_whole_loop(options: dict) -> None:
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(12, 16))
    groups = rng.integers(0, 12, size=150)
    feats = centres[groups] + rng.normal(scale=0.7, size=(150, 16))
    pairs = np.stack([np.arange(149), np.arange(1, 150)], axis=1)
    pairs = np.concatenate([pairs, rng.integers(0, 150, size=(200, 2))])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    config = NCutConfig(max_iterations=12, **options)
    fast = masked_ncut(feats, pairs, config)
    reference = masked_ncut(feats, pairs, replace(config, solver="reference"))
    assert fast.iterations == reference.iterations and fast.log == reference.log
    np.testing.assert_array_equal(fast.masks, reference.masks)


def test_isolated_masked_segments_let_the_loop_go_on() -> None:
    feats, _ = group_features([10, 12])
    result = masked_ncut(feats, chain(np.arange(22)), NCutConfig(isolate_masked=True, max_iterations=2))
    assert masks_as_sets(result.masks)[0] == set(range(10))
    assert result.iterations == 2  # the coupled version stops here (see test above)
