"""Point clouds through every stage's command: outputs per input point (NaN rows in no instance), one-line
errors (the same ``load_scan`` serves every command; prediction on point clouds is in test_predict.py)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.io.benchmark import read_gt_txt, read_predictions
from unscene3d.synthetic import make_synthetic_scene

runner = CliRunner()


@pytest.fixture(scope="module")
def organized_room(tmp_path_factory, pcd_writer):
    """A synthetic room's vertices as an organized PCD, every third row a NaN pixel, with mOSD-style labels."""
    scene = make_synthetic_scene(1, vertex_spacing=0.08)
    count = len(scene.vertices)
    total = count + count // 2
    total += total % 2  # two rows of pixels
    rows = np.full((total, 3), np.nan, dtype=np.float32)
    has_point = np.zeros(total, dtype=bool)
    has_point[np.flatnonzero(np.arange(total) % 3 != 2)[:count]] = True
    rows[has_point] = scene.vertices
    objects = (scene.gt // 1000 > 2) & (scene.gt % 1000 > 0)
    label = np.zeros(total, dtype=np.uint32)
    label[has_point] = np.where(objects, 10 * (scene.gt % 1000), 0)
    rgb = np.zeros(total, dtype=np.uint32)
    rgb[has_point] = (scene.colors[:, 0].astype(np.uint32) << 16) | (scene.colors[:, 1].astype(np.uint32) << 8) | \
        scene.colors[:, 2]
    folder = tmp_path_factory.mktemp("pcd")
    fields = {"x": rows[:, 0], "y": rows[:, 1], "z": rows[:, 2], "rgba": rgb, "label": label}
    path = pcd_writer(folder / "room.pcd", fields, encoding="binary_compressed", height=2,
                     viewpoint="0 0 5 1 0 0 0")
    return path, has_point


def test_baseline_export_gt_and_evaluate_per_input_point(organized_room, tmp_path):
    path, has_point = organized_room
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    for method in ("felzenszwalb", "hdbscan"):
        out = pred / method
        result = runner.invoke(app, ["baseline", method, str(path), "-o", str(out), "--up", "z"])
        assert result.exit_code == 0, result.output
        masks, _, _ = read_predictions(out, "room", len(has_point))
        assert len(masks) > 0 and not masks[:, ~has_point].any()
    result = runner.invoke(app, ["export-gt", str(path), "-o", str(gt)])
    assert result.exit_code == 0, result.output
    truth = read_gt_txt(gt / "room.txt", len(has_point))
    assert (truth[~has_point] == 0).all() and set(np.unique(truth[truth > 0]) // 1000) == {39}
    result = runner.invoke(app, ["evaluate", str(pred / "felzenszwalb"), "--gt", str(gt), "--json", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    assert 0 < json.loads((tmp_path / "e").read_text())["AP25"] <= 100  # percent


def test_oversegment_writes_one_id_per_input_point(organized_room, tmp_path):
    path, has_point = organized_room
    out = tmp_path / "room.segs.json"
    result = runner.invoke(app, ["oversegment", str(path), "-o", str(out), "--voxel-size", "0.05"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    seg_ids = np.array(data["segIndices"])
    assert len(seg_ids) == len(has_point) and (seg_ids[~has_point] == -1).all()
    assert (seg_ids[seg_ids[has_point]] == seg_ids[has_point]).all()  # an id is the input index of a member
    assert data["params"]["graph"] == "points" and data["params"]["voxelSize"] == 0.05


def test_hdbscan_warns_when_it_finds_no_instance(tmp_path, caplog):
    np.save(tmp_path / "few.npy", np.random.default_rng(0).random((50, 3)))
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(app, ["baseline", "hdbscan", str(tmp_path / "few.npy"), "-o", str(tmp_path / "p"),
                                     "--voxel-size", "0.2", "--min-cluster-size", "5"])
    assert result.exit_code == 0, result.output
    assert "HDBSCAN found no instance" in caplog.text
    assert (tmp_path / "p" / "few.txt").read_text() == ""


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 2\nHEIGHT 1\n"
         b"POINTS 2\nDATA binary\n\x00\x00", "truncated"),
        (b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y q\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\n"
         b"POINTS 1\nDATA ascii\n1 2 3\n", "no z field"),
        (b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\n"
         b"POINTS 1\nDATA ascii\n1 2 3\n", "at least 2 points"),
        (b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 2\nHEIGHT 1\n"
         b"POINTS 2\nDATA ascii\nnan nan nan\nnan nan nan\n", "none of the 2 points has coordinates"),
    ],
)
@pytest.mark.parametrize("command", ["oversegment", "baseline", "export-gt"])
def test_bad_point_clouds_are_one_line_errors(tmp_path, content, fragment, command):
    path = tmp_path / "bad.pcd"
    path.write_bytes(content)
    args = {
        "oversegment": ["oversegment", str(path), "-o", str(tmp_path / "s.json")],
        "baseline": ["baseline", "felzenszwalb", str(path), "-o", str(tmp_path / "p")],
        "export-gt": ["export-gt", str(path), "-o", str(tmp_path / "g")],
    }[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "bad.pcd" in lines[0] and fragment in lines[0], result.output
