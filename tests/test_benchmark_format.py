"""The ScanNet benchmark text formats: ground truth, prediction listings and mask files."""

import numpy as np
import pytest

import unscene3d.io.benchmark as benchmark
from unscene3d.errors import InputError
from unscene3d.io.benchmark import (
    export_predictions,
    list_prediction_scenes,
    read_gt_txt,
    read_predictions,
    write_gt_txt,
)


def test_gt_round_trip(tmp_path):
    gt = np.array([0, 5001, 5001, 39002, 1003, 0], dtype=np.int64)
    path = tmp_path / "gt" / "scene.txt"
    write_gt_txt(path, gt)
    assert path.read_text() == "0\n5001\n5001\n39002\n1003\n0\n"
    read = read_gt_txt(path, num_vertices=6)
    assert read.dtype == np.int64
    np.testing.assert_array_equal(read, gt)


def test_gt_errors_name_the_file_and_the_problem(tmp_path):
    path = tmp_path / "scene.txt"
    with pytest.raises(InputError, match="not found"):
        read_gt_txt(path)
    path.write_text("1\n2\n3\n")
    with pytest.raises(InputError, match=r"has 3 lines, expected 4 \(one per mesh vertex\)") as error:
        read_gt_txt(path, num_vertices=4)
    assert error.value.path == path
    path.write_text("1\n2.5\n3\n")
    with pytest.raises(InputError, match="line 2 is not an integer: '2.5'"):
        read_gt_txt(path)
    path.write_text("1\n\n3\n")
    with pytest.raises(InputError, match="line 2 is not an integer"):
        read_gt_txt(path)
    path.write_text("1\n-4\n")
    with pytest.raises(InputError, match="negative"):
        read_gt_txt(path)


def test_export_then_read_predictions_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    masks = rng.random((5, 300)) < 0.4
    scores = rng.random(5)
    labels = np.array([1, 5, 5, 39, 2])
    listing = export_predictions(tmp_path, "scene0000_00", masks, scores, labels)

    assert listing == tmp_path / "scene0000_00.txt"
    lines = listing.read_text().splitlines()
    assert len(lines) == 5
    path, label, score = lines[3].split(" ")
    assert path == "pred_mask/scene0000_00_3.txt" and label == "39" and float(score) == scores[3]
    mask_text = (tmp_path / "pred_mask" / "scene0000_00_0.txt").read_text()
    assert mask_text == "".join(f"{int(v)}\n" for v in masks[0])

    read_masks, read_labels, read_scores = read_predictions(tmp_path, "scene0000_00", 300)
    np.testing.assert_array_equal(read_masks, masks)
    np.testing.assert_array_equal(read_labels, labels)
    np.testing.assert_array_equal(read_scores, scores)  # exact: scores are written with repr
    assert read_labels.dtype == np.int64 and read_scores.dtype == np.float64


def test_export_default_label_and_empty_scene(tmp_path):
    export_predictions(tmp_path, "a", np.ones((2, 4), dtype=bool), [0.5, 0.25])
    _, labels, _ = read_predictions(tmp_path, "a", 4)
    np.testing.assert_array_equal(labels, [1, 1])
    export_predictions(tmp_path, "empty", np.zeros((0, 4), dtype=bool), np.zeros(0))
    masks, labels, scores = read_predictions(tmp_path, "empty", 4)
    assert masks.shape == (0, 4) and labels.shape == (0,) and scores.shape == (0,)


def test_reexport_removes_stale_masks_of_that_scene_only(tmp_path):
    export_predictions(tmp_path, "a", np.ones((4, 3), dtype=bool), np.arange(4.0))
    export_predictions(tmp_path, "a_1", np.ones((3, 3), dtype=bool), np.arange(3.0))
    export_predictions(tmp_path, "a", np.ones((2, 3), dtype=bool), np.arange(2.0))
    names = sorted(p.name for p in (tmp_path / "pred_mask").iterdir())
    assert names == ["a_0.txt", "a_1.txt", "a_1_0.txt", "a_1_1.txt", "a_1_2.txt"]
    assert read_predictions(tmp_path, "a_1", 3)[0].shape == (3, 3)


def test_interrupted_export_leaves_no_listing(tmp_path, monkeypatch):
    export_predictions(tmp_path, "a", np.ones((3, 3), dtype=bool), np.arange(3.0))
    written = []

    def failing_write(path, data):
        if len(written) == 1:
            raise OSError("disk full")
        written.append(path)
        real_write(path, data)

    real_write = benchmark.atomic_write_bytes
    monkeypatch.setattr(benchmark, "atomic_write_bytes", failing_write)
    with pytest.raises(OSError, match="disk full"):
        export_predictions(tmp_path, "a", np.zeros((3, 3), dtype=bool), np.arange(3.0))
    # The old listing is gone: it would point at a mix of old and new masks.
    assert not (tmp_path / "a.txt").exists()
    assert list_prediction_scenes(tmp_path) == []


def test_export_rejects_bad_arguments(tmp_path):
    masks = np.ones((2, 3), dtype=bool)
    with pytest.raises(ValueError, match="scene name"):
        export_predictions(tmp_path, "my scene", masks, [1.0, 2.0])
    with pytest.raises(ValueError, match="2 masks need 2 scores"):
        export_predictions(tmp_path, "a", masks, [1.0])
    with pytest.raises(ValueError, match="finite"):
        export_predictions(tmp_path, "a", masks, [1.0, np.nan])


def _write_listing(folder, text, masks=None):
    (folder / "pred_mask").mkdir(exist_ok=True)
    for name, content in (masks or {}).items():
        (folder / "pred_mask" / name).write_text(content)
    (folder / "s.txt").write_text(text)


@pytest.mark.parametrize(
    ("listing", "masks", "message"),
    [
        ("pred_mask/m.txt 1 0.5\n", {}, r"mask file not found"),
        ("pred_mask/m.txt 1 0.5\n", {"m.txt": "0\n1\n"}, r"m\.txt: has 2 lines, expected 3"),
        ("pred_mask/m.txt 1 0.5\n", {"m.txt": "0\nx\n1\n"}, r"m\.txt: line 2 is not an integer"),
        ("pred_mask/m.txt 1\n", {"m.txt": "0\n1\n1\n"}, r"s\.txt: line 1: expected '<mask path> <label id> <score>'"),
        ("pred_mask/m.txt 1 high\n", {"m.txt": "0\n1\n1\n"}, r"line 1: .* is not a number"),
        ("pred_mask/m.txt 1 nan\n", {"m.txt": "0\n1\n1\n"}, r"line 1: score 'nan' is not finite"),
        ("/abs/m.txt 1 0.5\n", {}, r"must be relative"),
        ("../m.txt 1 0.5\n", {}, r"points outside"),
        ("pred_mask/m.txt 1 0.5\npred_mask/m.txt 1 0.4\n", {"m.txt": "0\n1\n1\n"}, r"twice"),
    ],
)
def test_read_predictions_errors(tmp_path, listing, masks, message):
    _write_listing(tmp_path, listing, masks)
    with pytest.raises(InputError, match=message):
        read_predictions(tmp_path, "s", 3)


def test_read_predictions_accepts_benchmark_variants(tmp_path):
    # Any non-zero integer is in the mask, CRLF line ends, "5.0" label ids, blank lines.
    _write_listing(
        tmp_path,
        "pred_mask/m.txt 5.0 0.5\r\n\npred_mask/n.txt 3 1e-3\n",
        {"m.txt": "0\n2\n-1\n", "n.txt": "1\r\n0\r\n0\r\n"},
    )
    masks, labels, scores = read_predictions(tmp_path, "s", 3)
    np.testing.assert_array_equal(masks, [[False, True, True], [True, False, False]])
    np.testing.assert_array_equal(labels, [5, 3])
    np.testing.assert_array_equal(scores, [0.5, 0.001])


def test_missing_listing_and_scene_list(tmp_path):
    with pytest.raises(InputError, match="prediction file not found"):
        read_predictions(tmp_path, "s", 3)
    with pytest.raises(InputError, match="prediction folder not found"):
        list_prediction_scenes(tmp_path / "nope")
    export_predictions(tmp_path, "b", np.ones((1, 3), dtype=bool), [1.0])
    export_predictions(tmp_path, "a", np.ones((1, 3), dtype=bool), [1.0])
    (tmp_path / "semantic_instance_evaluation.txt").write_text("class,ap\n")
    (tmp_path / ".a.txt.tmp123.txt").write_text("")
    assert list_prediction_scenes(tmp_path) == ["a", "b"]


def test_per_vertex_files_beside_listings_are_not_scenes(tmp_path):
    # `predict` writes <scene>_instances.txt (one instance id per vertex) beside the listing.
    export_predictions(tmp_path, "a", np.ones((1, 3), dtype=bool), [1.0])
    (tmp_path / "a_instances.txt").write_text("1\n1\n1\n")
    export_predictions(tmp_path, "empty", np.zeros((0, 3), dtype=bool), np.zeros(0))
    assert list_prediction_scenes(tmp_path) == ["a", "empty"]
