"""A few labels: the ranker fine-tuned on labelled scans (tune-ranker)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.io.ply import write_ply
from unscene3d.proposals.ranker import load_ranker
from unscene3d.proposals.training import scene_examples
from unscene3d.proposals.tuning import TuningConfig, tune_ranker
from unscene3d.synthetic import make_synthetic_scene


def test_tuning_moves_the_scores_towards_the_labelled_scans_targets(tmp_path) -> None:
    scene = make_synthetic_scene(5, vertex_spacing=0.07)
    start = load_ranker()
    config = TuningConfig(replay_scenes=1, replay_seed=3, epochs=30, learning_rate=1e-3, labelled_weight=4.0)
    tuned = tune_ranker(start, [scene], tmp_path / "tuned.safetensors", config)
    assert load_ranker(tmp_path / "tuned.safetensors").info["tuned"]["scans"] == [scene.name]
    assert tuned.info["training"] == start.info["training"]  # what it was trained on stays recorded
    examples = scene_examples(scene, start.proposals)
    targets = examples["targets"]

    def error(ranker) -> float:
        return float(np.mean((ranker.score(examples["features"]) - targets) ** 2))

    assert error(tuned) < error(start)


def test_cli_needs_ground_truth(tmp_path) -> None:
    scene = make_synthetic_scene(5, vertex_spacing=0.07)
    write_ply(tmp_path / "room.ply", scene.vertices, scene.faces, scene.colors)
    result = CliRunner().invoke(app, ["tune-ranker", str(tmp_path / "room.ply"), "-o", str(tmp_path / "t.safetensors")])
    assert result.exit_code == 2 and "no ground truth" in result.output
    assert not (tmp_path / "t.safetensors").exists()
