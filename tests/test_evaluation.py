"""Class-agnostic AP by the ScanNet benchmark procedure: hand-computed cases, a brute-force cross-check
of the vectorised matcher, and real ScanNet ground truth.

Hand computations follow the benchmark's curve: one point per distinct score s (precision and recall
of the examples scoring >= s) plus (recall 0, precision 1); AP = sum of precision_i * w_i with
w_i = (r_{i-1} - r_{i+1}) / 2 over the points in increasing score order (r_{-1} = r_0, r_{last+1} = 0).
"""

import json
import math
import time

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.evaluation import (
    SCANNET_BENCHMARK_CLASS_IDS,
    EvaluationResult,
    average_precision,
    evaluate_dirs,
    evaluate_scenes,
    format_table,
)
from unscene3d.instances import Instances
from unscene3d.io.benchmark import export_predictions, read_gt_txt, write_gt_txt

FLOOR = 2001  # NYU40 2 (floor) is not a benchmark class: void
WALL = 1001


class Layout:
    """Consecutive blocks of vertices, one ground-truth id each; masks built from block names."""

    def __init__(self, **blocks: tuple[int, int]) -> None:
        self.slices = {}
        ids = []
        for name, (gt_id, size) in blocks.items():
            self.slices[name] = slice(len(ids), len(ids) + size)
            ids += [gt_id] * size
        self.gt = np.array(ids, dtype=np.int64)

    def mask(self, *parts: str | tuple[str, int]) -> np.ndarray:
        """Union of whole blocks ("A") and block prefixes (("A", 120) = its first 120 vertices)."""
        mask = np.zeros(len(self.gt), dtype=bool)
        for part in parts:
            name, count = (part, None) if isinstance(part, str) else part
            block = self.slices[name]
            stop = block.stop if count is None else block.start + count
            mask[block.start : stop] = True
        return mask


def figures(layout: Layout, preds: list[tuple[np.ndarray, float]], **kwargs) -> dict[str, float]:
    masks = np.array([mask for mask, _ in preds], dtype=bool).reshape(len(preds), len(layout.gt))
    scores = np.array([score for _, score in preds], dtype=np.float64)
    return evaluate_scenes([("scene", Instances(masks, scores), layout.gt)], **kwargs).overall


def assert_figures(actual: dict[str, float], ap: float, ap50: float, ap25: float) -> None:
    """``actual`` (percent, as the API gives figures) against the expected areas as fractions."""
    expected = {"AP": 100 * ap, "AP50": 100 * ap50, "AP25": 100 * ap25}
    assert actual == pytest.approx(expected, abs=1e-10, nan_ok=True)


@pytest.fixture
def two_objects() -> Layout:
    # A chair and a table, plus floor, wall and unlabelled vertices (all void).
    return Layout(A=(5001, 400), B=(7002, 400), floor=(FLOOR, 500), wall=(WALL, 300), none=(0, 200))


def test_perfect_prediction_gives_one(two_objects):
    preds = [(two_objects.mask("A"), 0.9), (two_objects.mask("B"), 0.8)]
    assert_figures(figures(two_objects, preds), 1.0, 1.0, 1.0)


def test_lower_scored_duplicate(two_objects):
    lay = two_objects
    # Alone, a lower-scored duplicate is a false positive below the only true positive:
    # points (s=0.8: P 1/2, R 1), (s=0.9: P 1, R 1), (1, 0); weights 0, 1/2, 1/2 -> AP 1.
    preds = [(lay.mask("A"), 0.9), (lay.mask("A"), 0.8), (lay.mask("B"), 0.9)]
    assert_figures(figures(lay, preds), 1.0, 1.0, 1.0)
    # With B's prediction below the duplicate: examples 0.9 TP, 0.8 FP, 0.7 TP.
    # Points (0.7: P 2/3, R 1), (0.8: P 1/2, R 1/2), (0.9: P 1, R 1/2), (1, 0);
    # weights 1/4, 1/4, 1/4, 1/4 -> AP = (2/3 + 1/2 + 1 + 1) / 4 = 19/24.
    preds = [(lay.mask("A"), 0.9), (lay.mask("A"), 0.8), (lay.mask("B"), 0.7)]
    assert_figures(figures(lay, preds), 19 / 24, 19 / 24, 19 / 24)
    # Which copy comes first in the input does not matter: the instance keeps the higher score.
    preds = [(lay.mask("A"), 0.8), (lay.mask("A"), 0.9), (lay.mask("B"), 0.7)]
    assert_figures(figures(lay, preds), 19 / 24, 19 / 24, 19 / 24)


def test_score_order_of_a_false_positive(two_objects):
    lay = two_objects
    # The false positive covers 100 of B's 400 vertices: IoU 0.25, not above any threshold.
    false_positive = lay.mask(("B", 100))
    # FP (0.9) above the TP of A (0.8), B missed: points (0.8: P 1/2, R 1/2), (0.9: P 0, R 0),
    # (1, 0); weights 1/4, 1/4, 0 -> AP = 1/8.
    preds = [(false_positive, 0.9), (lay.mask("A"), 0.8)]
    assert_figures(figures(lay, preds), 0.125, 0.125, 0.125)
    # The same FP below the TP: points (0.8: P 1/2, R 1/2), (0.9: P 1, R 1/2), (1, 0);
    # weights 0, 1/4, 1/4 -> AP = 1/2, as without the FP.
    preds = [(false_positive, 0.8), (lay.mask("A"), 0.9)]
    assert_figures(figures(lay, preds), 0.5, 0.5, 0.5)
    assert_figures(figures(lay, [(lay.mask("A"), 0.9)]), 0.5, 0.5, 0.5)


def test_tied_scores_make_one_curve_point(two_objects):
    lay = two_objects
    # Three examples at 0.5 (2 TP, 1 FP): point (P 2/3, R 1), (1, 0); weights 1/2, 1/2 -> 5/6.
    preds = [(lay.mask("A"), 0.5), (lay.mask(("B", 100)), 0.5), (lay.mask("B"), 0.5)]
    assert_figures(figures(lay, preds), 5 / 6, 5 / 6, 5 / 6)


def test_prediction_on_void_is_ignored_on_foreground_is_false_positive(two_objects):
    lay = two_objects
    baseline = figures(lay, [(lay.mask("A"), 0.8)])
    assert_figures(baseline, 0.5, 0.5, 0.5)  # B missed: (P 1, R 1/2), (1, 0) -> 1/2
    # Floor, wall and unlabelled vertices are void: a prediction there changes nothing.
    for void_part in ("floor", "wall", "none"):
        assert figures(lay, [(lay.mask(void_part), 0.9), (lay.mask("A"), 0.8)]) == baseline
    # On foreground it is a false positive above the true positive (1/8, see above).
    assert_figures(figures(lay, [(lay.mask(("B", 100)), 0.9), (lay.mask("A"), 0.8)]), 0.125, 0.125, 0.125)


def test_half_void_prediction_is_ignored_only_below_its_void_fraction(two_objects):
    lay = two_objects
    # 100 vertices of B and 100 of floor: IoU with B 100/500 = 0.2, void fraction 0.5.
    # At every AP threshold (>= 0.5) 0.5 <= threshold: a false positive (AP 1/8 as above);
    # at 0.25 the void fraction exceeds the threshold: ignored (AP25 1/2 as without it).
    preds = [(lay.mask(("B", 100), ("floor", 100)), 0.9), (lay.mask("A"), 0.8)]
    assert_figures(figures(lay, preds), 0.125, 0.125, 0.5)


def test_small_ground_truth_is_not_counted_and_excuses_its_prediction():
    lay = Layout(A=(5001, 400), tiny=(5002, 50), floor=(FLOOR, 500))
    # The 50-vertex instance is not a missed object...
    assert_figures(figures(lay, [(lay.mask("A"), 0.5)]), 1.0, 1.0, 1.0)
    # ...and a prediction of it (plus 60 floor vertices, to reach 100) is not a false positive:
    # its IoU 50/110 is above thresholds < 0.45, and 110/110 of it is void or small elsewhere.
    preds = [(lay.mask("tiny", ("floor", 60)), 0.9), (lay.mask("A"), 0.5)]
    assert_figures(figures(lay, preds), 1.0, 1.0, 1.0)
    # Counted when the minimum size allows it. At 0.25 both objects are found (AP25 1). At 0.5..0.9
    # the small object is missed; the prediction's void fraction 60/110 = 0.545 excuses it at 0.5
    # (A alone, one of two found: 1/2) but not at 0.55..0.9 (FP above TP, one missed: 1/8).
    # AP = (1/2 + 8 * 1/8) / 9 = 1/6.
    assert_figures(figures(lay, preds, min_region_size=50), 1 / 6, 0.5, 1.0)


def test_small_predictions_are_dropped(two_objects):
    lay = two_objects
    # A 99-vertex false positive above the TP would give 1/8; dropped, it changes nothing.
    assert_figures(figures(lay, [(lay.mask(("B", 99)), 0.9), (lay.mask("A"), 0.8)]), 0.5, 0.5, 0.5)
    # Only dropped predictions: instances exist but nothing is predicted -> 0.
    assert_figures(figures(lay, [(lay.mask(("A", 99)), 0.9)]), 0.0, 0.0, 0.0)


def test_iou_03_counts_at_ap25_only():
    lay = Layout(A=(5001, 400), B=(7002, 200), floor=(FLOOR, 300))
    # 120 of A's 400 vertices: IoU 0.3. At 0.25 both objects are found -> 1.
    # At 0.5..0.9 it is a FP at 0.9 above B's TP at 0.5 with A missed -> 1/8 (see above).
    preds = [(lay.mask(("A", 120)), 0.9), (lay.mask("B"), 0.5)]
    assert_figures(figures(lay, preds), 0.125, 0.125, 1.0)


def test_iou_between_thresholds():
    lay = Layout(A=(5001, 1000), floor=(FLOOR, 300))
    # IoU 0.72: true positive at 0.5, 0.55, 0.6, 0.65, 0.7 and a missed object at 0.75..0.9
    # (the unmatched prediction then is a FP, which does not lower AP 0 further). AP = 5/9.
    assert_figures(figures(lay, [(lay.mask(("A", 720)), 0.9)]), 5 / 9, 1.0, 1.0)


def test_undefined_and_empty_cases():
    void_only = Layout(floor=(FLOOR, 500), wall=(WALL, 500))
    assert_figures(figures(void_only, []), math.nan, math.nan, math.nan)
    assert_figures(figures(void_only, [(void_only.mask("floor"), 0.5)]), math.nan, math.nan, math.nan)
    objects = Layout(A=(5001, 400))
    assert_figures(figures(objects, []), 0.0, 0.0, 0.0)
    # Everything predicted lies on ignored vertices: curve with no examples -> 0.
    lay = Layout(A=(5001, 400), floor=(FLOOR, 400))
    assert_figures(figures(lay, [(lay.mask("floor"), 0.5)]), 0.0, 0.0, 0.0)


def test_scenes_are_pooled_before_the_curve():
    one = Layout(A=(5001, 400), floor=(FLOOR, 300))
    two = Layout(B=(7002, 400), floor=(FLOOR, 300))
    three = Layout(floor=(FLOOR, 300))
    result = evaluate_scenes(
        [
            ("one", Instances(one.mask("A")[None], [0.9]), one.gt),
            ("two", Instances(two.mask(("B", 100))[None], [0.95]), two.gt),  # FP, B missed
            ("three", Instances(three.mask("floor")[None], [0.99]), three.gt),  # no ground truth
        ]
    )
    # Pooled: FP 0.95 above TP 0.9, one of two objects missed -> 1/8, not the mean of 1 and 0.
    assert_figures(result.overall, 0.125, 0.125, 0.125)
    assert_figures(result.per_scene["one"], 1.0, 1.0, 1.0)
    assert_figures(result.per_scene["two"], 0.0, 0.0, 0.0)
    assert_figures(result.per_scene["three"], math.nan, math.nan, math.nan)
    assert list(result.per_scene) == ["one", "two", "three"]


def test_labels_of_ground_truth_define_foreground():
    # A prediction on label 1 (wall) is void by default; with other valid ids it is an object.
    lay = Layout(wall=(WALL, 400), A=(5001, 400))
    preds = [(lay.mask("wall"), 0.9), (lay.mask("A"), 0.8)]
    assert_figures(figures(lay, preds), 1.0, 1.0, 1.0)
    assert_figures(figures(lay, preds, valid_class_ids=[1, 5]), 1.0, 1.0, 1.0)
    assert_figures(figures(lay, [(lay.mask("A"), 0.8)], valid_class_ids=[1, 5]), 0.5, 0.5, 0.5)
    # label * 1000 + 0 (a labelled region without instance number) is an instance like any other.
    region = Layout(A=(5000, 400), floor=(FLOOR, 100))
    assert_figures(figures(region, [(region.mask("A"), 0.3)]), 1.0, 1.0, 1.0)


def test_average_precision_directly():
    assert average_precision(np.array([1.0, 0.0]), np.array([0.8, 0.9]), 1) == pytest.approx(12.5)  # percent
    assert average_precision(np.zeros(0), np.zeros(0), 3) == 0.0


def test_bad_arguments():
    lay = Layout(A=(5001, 400))
    found = Instances(lay.mask("A")[None], [0.5])
    with pytest.raises(ValueError, match="given twice"):
        evaluate_scenes([("s", found, lay.gt), ("s", found, lay.gt)])
    with pytest.raises(ValueError, match=r"masks must be \(K, 400\)"):
        evaluate_scenes([("s", Instances(found.masks[:, :10], found.scores), lay.gt)])
    with pytest.raises(ValueError, match="integer"):
        evaluate_scenes([("s", found, lay.gt.astype(float))])
    with pytest.raises(ValueError, match="positive"):
        evaluate_scenes([], valid_class_ids=[0, 5])


def _reference_figures(scenes, valid_ids=SCANNET_BENCHMARK_CLASS_IDS, min_size=100):
    """Brute force with sets and loops, written from the rules in words (module docstring)."""

    def ap_at(threshold):
        examples, missed, has_gt, has_pred = [], 0, False, False
        for masks, scores, gt in scenes:
            ids = [i for i in sorted(set(gt.tolist())) if i != 0 and i // 1000 in valid_ids]
            instance = {i: set(np.flatnonzero(gt == i).tolist()) for i in ids}
            void = set(range(len(gt))) - set().union(*instance.values())
            preds = [(set(np.flatnonzero(m).tolist()), s) for m, s in zip(masks, scores) if m.sum() >= min_size]
            counted = [i for i in ids if len(instance[i]) >= min_size]
            has_gt |= bool(counted)
            has_pred |= bool(preds)

            def iou(p, i):
                return len(p & instance[i]) / len(p | instance[i])

            taken = set()
            for i in counted:
                best = None
                for k, (p, s) in enumerate(preds):
                    if k in taken or iou(p, i) <= threshold:
                        continue
                    if best is None:
                        best = s
                        taken.add(k)
                    else:
                        examples.append((min(best, s), 0))
                        best = max(best, s)
                if best is None:
                    missed += 1
                else:
                    examples.append((best, 1))
            for p, s in preds:
                if any(iou(p, i) > threshold for i in ids):
                    continue
                excused = len(p & void) + sum(len(p & instance[i]) for i in ids if i not in counted)
                if excused / len(p) <= threshold:
                    examples.append((s, 0))
        if not has_gt:
            return math.nan
        if not has_pred:
            return 0.0
        total_true = sum(t for _, t in examples)
        points = []
        for s in sorted({s for s, _ in examples}):
            above = [t for score, t in examples if score >= s]
            points.append((sum(above) / len(above), sum(above) / (total_true + missed)))
        points.append((1.0, 0.0))
        recalls = [points[0][1]] + [r for _, r in points] + [0.0]
        return sum(p * (recalls[j] - recalls[j + 2]) / 2 for j, (p, _) in enumerate(points))

    aps = [ap_at(t) for t in np.arange(0.5, 0.95, 0.05)]
    return {"AP": float(np.mean(aps)), "AP50": aps[0], "AP25": ap_at(0.25)}


def _random_scene(rng):
    sizes = rng.choice([40, 120, 200, 350], size=8)
    labels = rng.choice([0, 1, 2, 3, 5, 39, 40], size=8)
    gt = np.repeat(labels * 1000 + np.arange(1, 9), sizes)
    gt = gt[rng.permutation(len(gt))]
    ids = np.unique(gt)
    masks = []
    for _ in range(rng.integers(0, 12)):
        chosen = np.isin(gt, rng.choice(ids, size=rng.integers(1, 3), replace=False))
        masks.append((chosen & (rng.random(len(gt)) < rng.uniform(0.3, 1.0))) | (rng.random(len(gt)) < 0.03))
    masks = np.array(masks, dtype=bool).reshape(-1, len(gt))
    scores = rng.choice([0.2, 0.4, 0.6, 0.8], size=len(masks))  # ties on purpose
    return masks, scores, gt


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_matcher_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    scenes = [_random_scene(rng) for _ in range(rng.integers(1, 4))]
    result = evaluate_scenes((f"s{i}", Instances(masks, scores), gt) for i, (masks, scores, gt) in enumerate(scenes))
    reference = {key: 100 * value for key, value in _reference_figures(scenes).items()}  # fractions -> percent
    assert result.overall == pytest.approx(reference, abs=1e-10, nan_ok=True)


def test_result_json_and_table():
    scene = {"AP": 50.0, "AP50": 100.0, "AP25": 100.0}
    undefined = dict.fromkeys(["AP", "AP50", "AP25"], math.nan)
    result = EvaluationResult(
        overall={"AP": 15.94, "AP50": 32.2, "AP25": 58.5},
        per_scene={"scene0000_00": scene, "empty": undefined},
    )
    # The result, its JSON and its table are all in percent, and the JSON says so.
    assert result.to_json() == {
        "units": "percent",
        "protocol": "scannet",
        "AP": 15.94,
        "AP50": 32.2,
        "AP25": 58.5,
        "per_scene": {
            "scene0000_00": {"AP": 50.0, "AP50": 100.0, "AP25": 100.0},
            "empty": {"AP": None, "AP50": None, "AP25": None},
        },
    }
    json.dumps(result.to_json(), allow_nan=False)  # standard JSON
    table = format_table(result)
    assert "15.9" in table and "32.2" in table and "58.5" in table and "scene0000_00" not in table
    table = format_table(result, per_scene=True)
    lines = table.splitlines()
    assert lines[0].split() == ["AP", "AP50", "AP25"]
    assert lines[2].split() == ["scene0000_00", "50.0", "100.0", "100.0"]
    assert lines[3].split() == ["empty", "n/a", "n/a", "n/a"]
    assert lines[-1].split() == ["overall", "15.9", "32.2", "58.5"]


def test_evaluate_dirs_errors(tmp_path):
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    with pytest.raises(InputError, match="no prediction files"):
        evaluate_dirs(pred_dir, gt_dir)
    export_predictions(pred_dir, "s", np.ones((1, 3), dtype=bool), [1.0])
    with pytest.raises(InputError, match="no ground truth for scene s") as error:
        evaluate_dirs(pred_dir, gt_dir)
    assert error.value.path == gt_dir / "s.txt"
    write_gt_txt(gt_dir / "s.txt", np.array([5001, 5001, 5001, 0]))
    # One mask against the ground truth: the mask is the suspect, and the message names both.
    with pytest.raises(InputError, match=r"s_0\.txt: has 3 lines, but the ground truth .*gt/s\.txt has 4"):
        evaluate_dirs(pred_dir, gt_dir)
    # Masks that agree with each other outvote the ground truth.
    export_predictions(pred_dir, "s", np.ones((2, 3), dtype=bool), [1.0, 0.5])
    with pytest.raises(InputError, match=r"gt/s\.txt: has 4 lines, but the 2 masks predicted for s have 3"):
        evaluate_dirs(pred_dir, gt_dir)
    export_predictions(pred_dir, "s", np.ones((3, 4), dtype=bool), [1.0, 0.5, 0.2])
    (pred_dir / "pred_mask" / "s_1.txt").write_text("1\n0\n")
    with pytest.raises(InputError, match=r"s_1\.txt: has 2 lines, but the scene's other masks have 4"):
        evaluate_dirs(pred_dir, gt_dir)
    with pytest.raises(InputError, match="prediction file not found"):
        evaluate_dirs(pred_dir, gt_dir, scenes=["t"])


def _instances_as_predictions(gt):
    ids = np.unique(gt)
    ids = ids[ids != 0]
    return gt[None, :] == ids[:, None], ids


def _counted_instances(gt):
    ids, sizes = np.unique(gt, return_counts=True)
    return int(np.sum((ids != 0) & np.isin(ids // 1000, SCANNET_BENCHMARK_CLASS_IDS) & (sizes >= 100)))


def test_scannet_ground_truth_as_predictions(scene0000_dir):
    gt = read_gt_txt(scene0000_dir / "instance_gt" / "scene0000_00.txt", num_vertices=81369)
    masks, ids = _instances_as_predictions(gt)
    assert len(ids) == 67
    # Every instance of any label, all scored 1 as the ScanNet export writes them.
    start = time.perf_counter()
    result = evaluate_scenes([("scene0000_00", Instances(masks, np.ones(len(masks))), gt)])
    assert time.perf_counter() - start < 2.0
    assert result.overall == {"AP": 100.0, "AP50": 100.0, "AP25": 100.0}

    # Without one counted object: one tied point (P 1, R (C-1)/C) and (1, 0) -> AP = (C-1)/C.
    counted = _counted_instances(gt)
    is_counted = np.isin(ids // 1000, SCANNET_BENCHMARK_CLASS_IDS) & (masks.sum(axis=1) >= 100)
    assert is_counted.sum() == counted
    dropped = np.flatnonzero(is_counted)[0]
    keep = np.arange(len(ids)) != dropped
    result = evaluate_scenes([("scene0000_00", Instances(masks[keep], np.ones(keep.sum())), gt)])
    expected = (counted - 1) / counted
    assert_figures(result.overall, expected, expected, expected)


def test_scannet_ground_truth_through_files(scene0000_dir, tmp_path):
    gt_dir = scene0000_dir / "instance_gt"
    gt = read_gt_txt(gt_dir / "scene0000_00.txt")
    masks, ids = _instances_as_predictions(gt)
    export_predictions(tmp_path, "scene0000_00", masks, np.linspace(1.0, 0.5, len(masks)), ids // 1000)
    result = evaluate_dirs(tmp_path, gt_dir)
    # Distinct scores: 28 curve points whose weighted sum is 1 up to rounding.
    assert_figures(result.overall, 1.0, 1.0, 1.0)
    assert_figures(result.per_scene["scene0000_00"], 1.0, 1.0, 1.0)


def test_scannet_segments_as_instances_match_reference_figures(shared_data):
    # DESIGN.md's reference: the C++ Segmentator's segments (k 0.01, min 20) on scene0000_00 taken as
    # instances, scored by size, give AP 1.1 / AP50 3.5 (percent).
    segs = shared_data / "scannet" / "segmentator_reference" / "scene0000_00_vh_clean_2.k0.01_min20.segs.json"
    gt = read_gt_txt(shared_data / "scannet" / "scene0000_00" / "instance_gt" / "scene0000_00.txt")
    seg_ids = np.array(json.loads(segs.read_text())["segIndices"])
    _, segment, sizes = np.unique(seg_ids, return_inverse=True, return_counts=True)
    # Segments under 100 vertices are dropped by the benchmark; leaving them out saves memory.
    large = np.flatnonzero(sizes >= 100)
    masks = segment[None, :] == large[:, None]
    result = evaluate_scenes([("scene0000_00", Instances(masks, sizes[large] / len(gt)), gt)])
    assert round(result.overall["AP"], 1) == 1.1
    assert round(result.overall["AP50"], 1) == 3.5
