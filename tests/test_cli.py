import json

import numpy as np
import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.io.benchmark import read_gt_txt, read_predictions
from unscene3d.io.ply import read_ply, write_ply
from unscene3d.io.segments import read_segs_json
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.visualize import is_coloured_output, label_colors, masks_to_labels

runner = CliRunner()


@pytest.fixture(scope="module")
def synthetic_ply(tmp_path_factory):
    scene = make_synthetic_scene(1)
    folder = tmp_path_factory.mktemp("scan")
    path = folder / "room.ply"
    write_ply(path, scene.vertices, scene.faces, scene.colors)
    return path, scene


def test_oversegment_writes_scannet_json(synthetic_ply, tmp_path):
    path, scene = synthetic_ply
    out = tmp_path / "room.segs.json"
    result = runner.invoke(app, ["oversegment", str(path), "-o", str(out), "--kthresh", "0.02", "--min-verts", "30"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["params"]["kThresh"] == 0.02 and data["params"]["segMinVerts"] == 30
    assert data["sceneId"] == "room"
    seg_ids = read_segs_json(out, num_vertices=scene.num_vertices)
    # Segment ids are vertex ids of a member vertex, as the C++ Segmentator writes them.
    assert np.all(seg_ids[seg_ids] == seg_ids)
    # Beside it, the mesh coloured by segment: one colour per segment.
    coloured = read_ply(tmp_path / "room.segs.ply")
    assert len(np.unique(coloured.colors, axis=0)) == len(np.unique(seg_ids)) and is_coloured_output(
        tmp_path / "room.segs.ply")


def test_baseline_then_evaluate(synthetic_ply, tmp_path):
    path, scene = synthetic_ply
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    result = runner.invoke(app, ["baseline", "felzenszwalb", str(path), "-o", str(pred_dir)])
    assert result.exit_code == 0, result.output
    masks, labels, scores = read_predictions(pred_dir, "room", scene.num_vertices)
    assert len(masks) > 0 and np.all(np.diff(scores) <= 0)
    coloured = read_ply(pred_dir / "room_instances.ply")  # instances coloured, the rest grey
    np.testing.assert_array_equal(coloured.colors, label_colors(masks_to_labels(masks, scores)))

    gt_dir.mkdir()
    (gt_dir / "room.txt").write_text("\n".join(map(str, scene.gt)) + "\n")
    assert np.array_equal(read_gt_txt(gt_dir / "room.txt"), scene.gt)
    json_out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", str(pred_dir), "--gt", str(gt_dir), "--json", str(json_out), "--per-scene"])
    assert result.exit_code == 0, result.output
    figures = json.loads(json_out.read_text())
    assert figures["units"] == "percent" and figures["protocol"] == "scannet"
    assert 0.0 <= figures["AP"] <= figures["AP50"] <= figures["AP25"] <= 100.0
    assert "room" in result.output and "percent" in result.output
    # The console shows the JSON's figures, in the same unit.
    overall = result.output.splitlines()[-1].split()
    assert overall[0] == "overall"
    assert [float(v) for v in overall[1:]] == [round(figures[k], 1) for k in ("AP", "AP50", "AP25")]

    # A second run skips the finished scan instead of redoing it.
    mtime = (pred_dir / "room.txt").stat().st_mtime_ns
    result = runner.invoke(app, ["baseline", "felzenszwalb", str(path), "-o", str(pred_dir)])
    assert result.exit_code == 0 and (pred_dir / "room.txt").stat().st_mtime_ns == mtime


def test_missing_input_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nope.ply"
    result = runner.invoke(app, ["oversegment", str(missing), "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert "nope.ply" in result.output and "Traceback" not in result.output


def test_demo_writes_everything(tmp_path):
    result = runner.invoke(app, ["demo", "-o", str(tmp_path), "--fit-rooms", "0"])
    assert result.exit_code == 0, result.output
    for name in ["scene.ply", "segments.segs.json", "segments.ply", "felzenszwalb_instances.ply",
                 "hdbscan_instances.ply", "pseudo_masks_instances.ply", "evaluation.json", "index.html"]:
        assert (tmp_path / name).is_file(), name
    assert len(list((tmp_path / "pseudo").glob("*.npz"))) == 1  # reusable by `unscene3d train`
    figures = json.loads((tmp_path / "evaluation.json").read_text())
    assert "selftrained" not in figures  # only with --run
    for name in ("felzenszwalb", "hdbscan", "pseudo_masks"):
        assert figures[name]["units"] == "percent"
        assert 0.0 <= figures[name]["AP"] <= figures[name]["AP25"] <= 100.0


def test_demo_fits_a_few_rooms_and_reports_every_round(tmp_path):
    from unscene3d.demo import run_demo

    summary = run_demo(tmp_path, fit_rooms=2, rounds=2, fit_steps=(4, 2))
    evaluation = json.loads((tmp_path / "selftraining" / "evaluation.json").read_text())
    assert set(evaluation) == {"units", "pseudo", "ranker_1", "round_1", "round_2"}
    assert "round_2" in summary and "ranker_1" in summary and "pseudo" in summary
    for room in ("synthetic_0001", "synthetic_0002"):
        assert (tmp_path / "selftraining" / "predictions" / "round_2" / f"{room}.txt").is_file()
    assert "round_2" in (tmp_path / "index.html").read_text()  # the page shows the rounds


def test_synthetic_writes_loadable_scans_with_ground_truth(tmp_path):
    from unscene3d.io.scan import load_scan

    result = runner.invoke(app, ["synthetic", "-o", str(tmp_path), "--seed", "2", "--seed", "3"])
    assert result.exit_code == 0, result.output
    for seed in (2, 3):
        expected = make_synthetic_scene(seed)
        scene = load_scan(tmp_path / f"{expected.name}.ply", gt_path=tmp_path / "gt" / f"{expected.name}.txt")
        np.testing.assert_allclose(scene.vertices, expected.vertices, atol=1e-5)  # stored as float32
        np.testing.assert_array_equal(scene.gt, expected.gt)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_in_training_says_how_to_resume(tmp_path, monkeypatch):
    import unscene3d.fit
    import unscene3d.train.pretrain

    scan = tmp_path / "room.ply"
    scene = make_synthetic_scene(1, vertex_spacing=0.1)
    write_ply(scan, scene.vertices, scene.faces, scene.colors)
    monkeypatch.setattr(unscene3d.train.pretrain, "pretrain", _interrupt)
    monkeypatch.setattr(unscene3d.fit, "fit", _interrupt)
    result = runner.invoke(app, ["pretrain", str(scan), "-o", str(tmp_path / "pre")])
    assert result.exit_code == 130 and "--resume" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["fit", str(scan), "-o", str(tmp_path / "fit")])
    assert result.exit_code == 130 and "run the same command again" in result.output


def test_version():
    from unscene3d import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"unscene3d {__version__}\n"


@pytest.mark.parametrize("command", [[], *[[name] for name in (
    "oversegment", "evaluate", "baseline", "export-gt", "synthetic", "demo", "pretrain", "features3d", "pseudo-masks",
    "train", "fit", "predict", "view")]])
def test_help_shows_no_type_for_flags(command):
    # A flag takes no value; typer >= 0.2x printed "--force <bool>" as if it took one.
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "--help" in result.output
    if command == ["baseline"]:
        assert "--force" in result.output and "<path>" in result.output  # options that take values keep theirs
