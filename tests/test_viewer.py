"""`unscene3d view`: what it finds in scan, prediction and run folders, the data it puts in the page,
and one-line errors for bad paths. (The page in a real browser: test_viewer_browser.py.)"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.errors import InputError
from unscene3d.evaluation import evaluate_scenes
from unscene3d.instances import Instances
from unscene3d.io.benchmark import export_predictions, write_gt_txt
from unscene3d.io.ply import write_ply
from unscene3d.predict import write_instances
from unscene3d.pseudo.pipeline import PseudoMaskOptions, pseudo_masks_for_scene, write_pseudo_masks
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.viewer import ScanNotFound, find_inputs, write_page
from unscene3d.visualize import is_coloured_output, label_colors, masks_to_labels

runner = CliRunner()
SCENE_BLOCK = re.compile(r'<script type="application/json" class="scene-data" data-name="([^"]*)">(.*?)</script>', re.S)


def small_room(seed: int, name: str):
    scene = make_synthetic_scene(seed, vertex_spacing=0.12)
    scene.name = name
    return scene


def object_masks(scene) -> tuple[np.ndarray, np.ndarray]:
    """The room's furniture as instance masks (a perfect prediction), scored in decreasing order."""
    ids = np.unique(scene.gt[(scene.gt % 1000 > 0) & (scene.gt // 1000 > 2)])
    return scene.gt[None] == ids[:, None], np.linspace(0.9, 0.5, len(ids))


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    """A folder as `unscene3d synthetic` writes it: two scans and gt/."""
    folder = tmp_path_factory.mktemp("scans")
    for seed, name in [(1, "room1"), (2, "room2")]:
        scene = small_room(seed, name)
        write_ply(folder / f"{name}.ply", scene.vertices, scene.faces, scene.colors)
        write_gt_txt(folder / "gt" / f"{name}.txt", scene.gt)
    return folder


def page_scenes(path: Path) -> dict[str, dict]:
    html = path.read_text()
    return {name: json.loads(block) for name, block in SCENE_BLOCK.findall(html)}


def layer_labels(layer: dict) -> np.ndarray:
    dtype = np.uint16 if layer["labelBytes"] == 2 else np.uint32
    return np.frombuffer(base64.b64decode(layer["labels"]), dtype=dtype).astype(np.int64) - 1


def test_scan_folder_shows_every_scan_with_its_ground_truth(scans, tmp_path):
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["view", str(scans), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 scene(s)" in result.output and "all " in result.output
    html = out.read_text()
    # Self-contained: nothing loaded from elsewhere.
    assert "<script src" not in html and "<link" not in html and "THREE" in html
    scenes = page_scenes(out)
    assert list(scenes) == ["room1", "room2"]
    room = small_room(1, "room1")
    data = scenes["room1"]
    assert [layer["name"] for layer in data["layers"]] == ["input colours", "segments", "ground truth"]
    # Positions come back to within the 16-bit quantisation step.
    quantised = np.frombuffer(base64.b64decode(data["positions"]), dtype=np.uint16).reshape(-1, 3)
    positions = np.array(data["origin"]) + quantised * np.array(data["extent"])
    np.testing.assert_allclose(positions, room.vertices, atol=np.ptp(room.vertices, axis=0).max() / 65535)
    rgb = np.frombuffer(base64.b64decode(data["layers"][0]["rgb"]), dtype=np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(rgb, room.colors)
    gt_layer = data["layers"][2]
    labels = layer_labels(gt_layer)
    assert (labels == -1).sum() == (room.gt == 0).sum()
    assert len(gt_layer["legend"]) == len(np.unique(room.gt[room.gt > 0]))
    assert any(muted for _, _, muted in gt_layer["legend"])  # walls and floor are void for the ScanNet rule


def test_prediction_folder_with_its_scan_has_a_layer_with_ap(scans, tmp_path):
    scene = small_room(1, "room1")
    masks, scores = object_masks(scene)
    pred = tmp_path / "pred"
    export_predictions(pred, "room1", masks, scores)

    # Alone, the predictions have no geometry: one line naming the folder.
    result = runner.invoke(app, ["view", str(pred), "-o", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and str(pred) in result.output and "room1" in result.output
    assert not (tmp_path / "x.html").exists()

    out = tmp_path / "page.html"
    result = runner.invoke(app, ["view", str(pred), str(scans / "room1.ply"), "--gt", str(scans / "gt"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    scenes = page_scenes(out)
    assert list(scenes) == ["room1"]  # only the predicted scene
    layer = scenes["room1"]["layers"][-1]
    assert layer["name"] == "pred"
    np.testing.assert_array_equal(layer_labels(layer), masks_to_labels(masks, scores))
    palette = np.frombuffer(base64.b64decode(layer["palette"]), dtype=np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(palette, label_colors(np.arange(len(masks))))  # the PLY files' colours
    assert [entry[0] for entry in layer["legend"]] == list(range(len(masks)))  # by decreasing score
    assert layer["summary"] == f"{len(masks)} instances · AP 100.0 · AP50 100.0 · AP25 100.0"


def test_run_folder_finds_pseudo_masks_rounds_and_predictions(tmp_path):
    """A `fit`-like run: RUN/pseudo/, RUN/round_k/ (checkpoints, densified masks), RUN/predictions/round_k/."""
    scene = small_room(2, "room2")
    scan = tmp_path / "scans" / "room2.ply"
    write_ply(scan, scene.vertices, scene.faces, scene.colors)
    scene.source = scan
    run = tmp_path / "run"
    pseudo = pseudo_masks_for_scene(scene, PseudoMaskOptions())
    write_pseudo_masks(run / "pseudo", pseudo, scene)
    masks, scores = object_masks(scene)
    for k in (1, 2, 10):
        write_instances(run / "predictions" / f"round_{k}", scene, Instances(masks[:k], scores[:k]))
        (run / f"round_{k}" / "checkpoints" / "step_1").mkdir(parents=True)
    export_predictions(run / "round_2" / "added", "room2", masks[:1], scores[:1])
    np.savez(run / "round_2" / "added" / "room2.npz", added=np.ones((1, 3), dtype=bool))  # not a pseudo-mask file

    inputs = find_inputs([run])
    assert [s.name for s in inputs.prediction_sets] == [
        "predictions/round_1", "predictions/round_2", "predictions/round_10", "pseudo", "round_2/added"]
    assert inputs.scan_for("room2") == scan  # recorded by the pseudo masks
    assert is_coloured_output(run / "pseudo" / "room2_instances.ply")

    summary = write_page([run], tmp_path / "run.html")
    layers = page_scenes(tmp_path / "run.html")["room2"]["layers"]
    # round_2/added holds round_1's single mask: one layer, both names.
    assert [layer["name"] for layer in layers] == [
        "input colours", "segments", "predictions/round_1 = round_2/added", "predictions/round_2",
        "predictions/round_10", "pseudo"]
    # The segment layer is the pseudo masks' own oversegmentation.
    np.testing.assert_array_equal(layer_labels(layers[1]), pseudo.segment_labels)
    assert summary.scenes == (("room2", 6, f"all {scene.num_vertices:,} points shown"),)

    # The run folder moved with its scans: the recorded path is stale, the scan is found by its name.
    moved = tmp_path / "moved"
    (tmp_path / "scans").rename(moved)
    with pytest.raises(ScanNotFound, match="no scan found for scene room2"):
        write_page([run], tmp_path / "again.html")
    assert write_page([run, moved], tmp_path / "again.html").scenes[0][1] == 6


def test_large_scans_are_subsampled_and_say_so(scans, tmp_path):
    summary = write_page([scans / "room1.ply"], tmp_path / "page.html", max_points=1000,
                         gt_dir=scans / "gt", protocol="all")
    total = small_room(1, "room1").num_vertices
    assert summary.scenes[0][2] == f"1,000 of {total:,} points shown (uniform random sample, seed 0)"
    data = page_scenes(tmp_path / "page.html")["room1"]
    assert data["note"] == summary.scenes[0][2]
    assert all(len(layer_labels(layer)) == 1000 for layer in data["layers"] if "labels" in layer)
    # The same page twice: deterministic.
    write_page([scans / "room1.ply"], tmp_path / "again.html", max_points=1000, gt_dir=scans / "gt", protocol="all")
    assert (tmp_path / "page.html").read_bytes() == (tmp_path / "again.html").read_bytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "no such file or folder"),
        (lambda tmp: tmp / "notes.txt", "not a scan"),
        (lambda tmp: tmp / "empty", "nothing to show"),
    ],
)
def test_bad_paths_are_one_line_naming_the_path(tmp_path, make, message):
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty").mkdir()
    path = make(tmp_path)
    result = runner.invoke(app, ["view", str(path), "-o", str(tmp_path / "page.html")])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {path}: {message}")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    with pytest.raises(InputError):
        write_page([path], tmp_path / "page.html")


def test_a_missing_ground_truth_folder_is_named(scans, tmp_path):
    result = runner.invoke(app, ["view", str(scans), "--gt", str(tmp_path / "nogt"), "-o", str(tmp_path / "p.html")])
    assert result.exit_code == 2 and result.output == f"error: {tmp_path / 'nogt'}: ground-truth folder not found\n"


def test_predictions_that_do_not_fit_their_scan_name_the_mask_file(scans, tmp_path):
    pred = tmp_path / "pred"
    export_predictions(pred, "room1", np.ones((1, 10), dtype=bool), [1.0])
    result = runner.invoke(app, ["view", str(pred), str(scans), "-o", str(tmp_path / "page.html")])
    assert result.exit_code == 2 and "room1_0.txt" in result.output and "expected" in result.output


def test_evaluate_report_writes_curves_and_a_view(scans, tmp_path):
    scene = small_room(1, "room1")
    masks, scores = object_masks(scene)
    pred = tmp_path / "pred"
    export_predictions(pred, "room1", masks[1:], scores[1:])  # one object missed
    report = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", str(pred), "--gt", str(scans / "gt"), "--report", str(report),
                                 "--scans", str(scans / "room1.ply")])
    assert result.exit_code == 0, result.output
    for name in ("index.html", "evaluation.json", "pr_iou25.png", "pr_iou50.png", "ap_per_iou.png", "view.html"):
        assert (report / name).is_file(), name
    figures = json.loads((report / "evaluation.json").read_text())
    other = small_room(2, "room2").gt  # in the ground truth, not predicted: all missed
    expected = evaluate_scenes([("room1", Instances(masks[1:], scores[1:]), scene.gt),
                                ("room2", Instances.empty(len(other)), other)]).overall
    assert figures["units"] == "percent"
    assert figures["AP50"] == pytest.approx(expected["AP50"], abs=1e-4)
    assert figures["ap_per_iou"]["0.50"] == figures["AP50"] and figures["ap_per_iou"]["0.25"] == figures["AP25"]
    index = (report / "index.html").read_text()
    assert 'href="view.html"' in index and 'src="pr_iou50.png"' in index and "room1" in index
    assert (report / "pr_iou50.png").read_bytes()[:4] == b"\x89PNG"

    # Without its scans the report still comes, and says why there is no 3D view.
    result = runner.invoke(app, ["evaluate", str(pred), "--gt", str(scans / "gt"), "--report", str(tmp_path / "r2")])
    assert result.exit_code == 0, result.output
    assert "No 3D view: no scan found for scene room1" in (tmp_path / "r2" / "index.html").read_text()


def page_config(path: Path) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="viewer-config">(.*?)</script>',
                                path.read_text(), re.S).group(1))


def test_view_layer_names_the_first_layer_and_must_exist(scans, tmp_path):
    scene = small_room(1, "room1")
    masks, scores = object_masks(scene)
    export_predictions(tmp_path / "predictions" / "round_4", "room1", masks, scores)
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["view", str(tmp_path / "predictions"), str(scans / "room1.ply"), "-o", str(out),
                                 "--layer", "round_4"])
    assert result.exit_code == 0, result.output
    assert page_config(out)["layer"] == "round_4"
    kinds = {layer["name"]: (layer["kind"], layer["keys"]) for layer in page_scenes(out)["room1"]["layers"]}
    assert kinds["predictions/round_4"] == ("prediction", ["predictions/round_4", "round_4"])
    assert kinds["segments"][0] == "segments"
    assert kinds["input colours"] == ("input", ["input colours"])

    # A name no scene has is one line listing the layers there are, and no page.
    result = runner.invoke(app, ["view", str(scans / "room1.ply"), "-o", str(tmp_path / "x.html"), "--layer", "round_9"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "--layer 'round_9': no scene has a layer of that name; the layers are input colours, segments" \
        in result.stderr
    assert not (tmp_path / "x.html").exists()


def test_layer_keys_are_the_name_its_parts_and_their_ends():
    from unscene3d.viewer.layers import layer_keys

    assert layer_keys("Predictions/Round_4") == ["predictions/round_4", "round_4"]
    assert layer_keys("pseudo = predictions/pseudo") == ["pseudo = predictions/pseudo", "pseudo",
                                                         "predictions/pseudo"]
