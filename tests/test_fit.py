"""`unscene3d fit` on ScanNet-style scene folders: every stage, evaluated with the scans' own ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.evaluation import evaluate_dirs
from unscene3d.fit import FitOptions, fit
from unscene3d.io.benchmark import write_gt_txt
from unscene3d.io.ply import write_ply
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train.selftrain import preset_config
from unscene3d.train.selftrain_data import load_training_scans

pytestmark = pytest.mark.usefixtures("two_torch_threads")
NAMES = ("scene0001_00", "scene0002_00")


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    """Two small synthetic rooms as ScanNet scene folders (mesh + instance_gt/), and the same ground truth in gt/."""
    root = tmp_path_factory.mktemp("fit")
    for seed, name in enumerate(NAMES, 1):
        scene = make_synthetic_scene(seed, vertex_spacing=0.15)
        folder = root / "scans" / name
        write_ply(folder / f"{name}_vh_clean_2.ply", scene.vertices, scene.faces, scene.colors)
        write_gt_txt(folder / "instance_gt" / f"{name}.txt", scene.gt)
        write_gt_txt(root / "gt" / f"{name}.txt", scene.gt)
    return root


@pytest.fixture(scope="module")
def run(scans) -> Path:
    config = preset_config("segment", steps=3, finetune_steps=2, batch_size=1)
    fit([scans / "scans"], scans / "run", FitOptions(rounds=1, config=config))
    return scans / "run"


def test_fit_writes_every_round_and_scores_it_with_the_scans_own_ground_truth(scans, run):
    figures = json.loads((run / "evaluation.json").read_text())
    assert set(figures) == {"units", "pseudo", "round_1"} and figures["units"] == "percent"
    for stage, folder in (("pseudo", run / "pseudo"), ("round_1", run / "predictions" / "round_1")):
        expected = evaluate_dirs(folder, scans / "gt").overall
        assert figures[stage] == {key: round(value, 2) for key, value in expected.items()}
    assert (run / "index.html").is_file()


def test_training_scans_read_a_scannet_folders_ground_truth_only_on_request(run):
    config = preset_config("segment")
    assert all(scan.scene.gt is None for scan in load_training_scans(run / "pseudo", [], config.model))
    assert all(scan.scene.gt is not None
               for scan in load_training_scans(run / "pseudo", [], config.model, load_gt=True))


def test_the_command_resumes_a_finished_run_and_prints_its_figures(scans, run):
    result = CliRunner().invoke(app, ["fit", str(scans / "scans"), "-o", str(run), "--rounds", "1"])
    assert result.exit_code == 0, result.output
    assert "AP of the pseudo masks and of each round" in result.output and "round_1" in result.output
