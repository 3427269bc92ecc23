"""`unscene3d fit` on ScanNet-style scene folders: every stage, evaluated with the scans' own ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.evaluation import evaluate_dirs
from unscene3d.fit import FitOptions, fit, format_scans
from unscene3d.io.benchmark import read_predictions, write_gt_txt
from unscene3d.io.ply import write_ply
from unscene3d.proposals.ranker import load_ranker
from unscene3d.proposals.self_training import SelfTrainingConfig
from unscene3d.pseudo.pipeline import read_pseudo_masks
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train.selftrain import preset_config
from unscene3d.train.selftrain_data import load_training_scans

pytestmark = pytest.mark.usefixtures("two_torch_threads")
NAMES = ("scene0001_00", "scene0002_00")
RANKER_ROUNDS = SelfTrainingConfig(rounds=2, replay_scenes=2)


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
    fit([scans / "scans"], scans / "run", FitOptions(rounds=1, config=config, self_training=SelfTrainingConfig(rounds=0)))
    return scans / "run"


@pytest.fixture(scope="module")
def ranked(scans) -> Path:
    """A run with two ranker rounds (two replayed generated rooms, to be quick) before one self-training round."""
    config = preset_config("segment", steps=3, finetune_steps=2, batch_size=1)
    fit([scans / "scans"], scans / "ranked", FitOptions(rounds=1, config=config, self_training=RANKER_ROUNDS))
    return scans / "ranked"


def test_fit_writes_every_round_and_scores_it_with_the_scans_own_ground_truth(scans, run):
    figures = json.loads((run / "evaluation.json").read_text())
    assert set(figures) == {"units", "pseudo", "round_1"} and figures["units"] == "percent"
    for stage, folder in (("pseudo", run / "pseudo"), ("round_1", run / "predictions" / "round_1")):
        expected = evaluate_dirs(folder, scans / "gt").overall
        assert figures[stage] == {key: round(value, 2) for key, value in expected.items()}
    assert (run / "index.html").is_file()
    per_scan = json.loads((run / "evaluation_scans.json").read_text())
    assert per_scan["units"] == "percent" and set(per_scan["scans"]) == set(NAMES)
    for stage, folder in (("pseudo", run / "pseudo"), ("round_1", run / "predictions" / "round_1")):
        for name, expected in evaluate_dirs(folder, scans / "gt").per_scene.items():
            assert per_scan["scans"][name][stage] == {key: round(value, 2) for key, value in expected.items()}


def test_the_scans_table_names_every_scan_below_its_pseudo_masks():
    figures = {"pseudo": {"AP50": 40.0}, "ranker_1": {"AP50": 45.0}, "round_1": {"AP50": 39.9}}
    # room_c is below by less than the table shows: not named
    table = format_scans({"room_a": figures, "room_b": {**figures, "round_1": {"AP50": 41.0}},
                          "room_c": {**figures, "round_1": {"AP50": 39.98}}})
    assert table.splitlines() == [
        "AP50      pseudo  ranker_1   round_1",
        "room_a      40.0      45.0      39.9",
        "room_b      40.0      45.0      41.0",
        "room_c      40.0      45.0      40.0",
        "below their pseudo masks after round_1: room_a",
    ]


def test_training_scans_read_a_scannet_folders_ground_truth_only_on_request(run):
    config = preset_config("segment")
    assert all(scan.scene.gt is None for scan in load_training_scans(run / "pseudo", [], config.model))
    assert all(scan.scene.gt is not None
               for scan in load_training_scans(run / "pseudo", [], config.model, load_gt=True))


def test_the_command_resumes_a_finished_run_and_prints_its_figures(scans, run):
    result = CliRunner().invoke(app, ["fit", str(scans / "scans"), "-o", str(run), "--rounds", "1", "--ranker-rounds",
                                      "0"])
    assert result.exit_code == 0, result.output
    assert "AP of the pseudo masks and of each round" in result.output and "round_1" in result.output
    assert "per scan:" in result.output and all(name in result.output for name in NAMES)


def test_ranker_rounds_are_evaluated_and_the_self_training_rounds_learn_from_the_last(scans, ranked):
    figures = json.loads((ranked / "evaluation.json").read_text())
    assert set(figures) == {"units", "pseudo", "ranker_1", "ranker_2", "round_1"}
    for k in (1, 2):
        folder = ranked / "ranker" / f"round_{k}"
        expected = evaluate_dirs(folder, scans / "gt").overall
        assert figures[f"ranker_{k}"] == {key: round(value, 2) for key, value in expected.items()}
        ranker = load_ranker(ranked / "ranker" / f"round_{k}.safetensors")
        assert ranker.info["self_trained"]["round"] == k and sorted(ranker.views) == ["border", "shape"]
    # the self-training round's union starts with the last ranker round's masks, in their order
    last = read_pseudo_masks(ranked / "ranker" / "round_2" / f"{NAMES[0]}.npz").vertex_instances()
    trained = [scan for scan in load_training_scans(ranked / "ranker" / "round_2", [], preset_config("segment").model)
               if scan.name == NAMES[0]][0]
    assert np.array_equal(trained.pseudo_masks, read_pseudo_masks(ranked / "ranker" / "round_2" /
                                                                  f"{NAMES[0]}.npz").instances.masks)
    union, _, _ = read_predictions(ranked / "predictions" / "round_1", NAMES[0], last.masks.shape[1])
    assert len(last.masks) > 0 and all(any(np.array_equal(mask, kept) for kept in union) for mask in last.masks)


def test_an_interrupted_ranker_round_is_made_again_bit_for_bit(scans, ranked, tmp_path):
    import shutil

    from safetensors.numpy import load_file

    copy = tmp_path / "ranked"
    shutil.copytree(ranked, copy)
    weights = load_file(ranked / "ranker" / "round_2.safetensors")
    (copy / "ranker" / "round_2.safetensors").unlink()
    shutil.rmtree(copy / "ranker" / "round_2")
    config = preset_config("segment", steps=3, finetune_steps=2, batch_size=1)
    fit([scans / "scans"], copy, FitOptions(rounds=1, config=config, self_training=RANKER_ROUNDS))
    again = load_file(copy / "ranker" / "round_2.safetensors")
    assert again.keys() == weights.keys() and all(np.array_equal(again[name], weights[name]) for name in weights)
    assert load_ranker(copy / "ranker" / "round_2.safetensors").info == \
        load_ranker(ranked / "ranker" / "round_2.safetensors").info
    assert json.loads((copy / "evaluation.json").read_text()) == json.loads((ranked / "evaluation.json").read_text())
