"""Inference with a self-trained model: output files, scans without colour, checkpoints that do not fit."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.errors import InputError
from unscene3d.instances import Instances
from unscene3d.io.benchmark import read_predictions
from unscene3d.io.ply import read_ply, write_ply
from unscene3d.model.backbone import BackboneConfig
from unscene3d.model.checkpoint import save_checkpoint
from unscene3d.model.decoder import DecoderConfig
from unscene3d.model.mask3d import Mask3DConfig
from unscene3d.model.postprocess import PostprocessConfig
from unscene3d.predict import Predictor, predict_scans
from unscene3d.pseudo.pipeline import PseudoMasks, segment_scene, write_pseudo_masks
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train.augment import AugmentConfig
from unscene3d.train.selftrain import SelfTrainConfig, self_train, without_color
from unscene3d.visualize import label_colors

pytestmark = pytest.mark.usefixtures("two_torch_threads")


def tiny_run_config(**overrides) -> SelfTrainConfig:
    backbone = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1,) * 8, init_dim=8, stem_kernel=3,
                              norm="instance")
    decoder = DecoderConfig(level_channels=(16, 8, 12, 12), hidden_dim=16, num_heads=2, ffn_dim=32, num_queries=8,
                            num_passes=1, sample_sizes=(20, 40, 80, 160))
    values = dict(preset="test", model=Mask3DConfig(backbone, decoder), augment=AugmentConfig(crop_size=0, elastic=()),
                  epochs=6, batch_size=1, lr=3e-3, drop_loss_warmup=1.0, checkpoint_every=6,
                  # Six steps leave every mask probability under 0.5; a lower vote keeps masks, so the output
                  # files have content to check.
                  postprocess=PostprocessConfig(vote_threshold=0.3))
    return SelfTrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny model trained for a few steps on one small synthetic room (its objects as pseudo masks)."""
    folder = tmp_path_factory.mktemp("predict")
    scene = make_synthetic_scene(2, vertex_spacing=0.12)
    scene.name = "room2"
    segmentation = segment_scene(scene)
    objects = np.unique(scene.gt[(scene.gt % 1000 > 0) & (scene.gt // 1000 > 2)])
    masks = np.array([np.bincount(segmentation.labels, weights=(scene.gt == o).astype(float),
                                  minlength=segmentation.num_segments) > 0 for o in objects])
    write_pseudo_masks(folder / "pseudo", PseudoMasks(scene.name, segmentation.labels,
                                                      Instances(masks, np.ones(len(masks))), {}))
    write_ply(folder / "room2.ply", scene.vertices, scene.faces, scene.colors)
    config = tiny_run_config()
    self_train(folder / "pseudo", [folder / "room2.ply"], folder / "run", config)
    return folder / "run"


@pytest.fixture(scope="module")
def colourless_scan(tmp_path_factory) -> Path:
    scene = make_synthetic_scene(3, vertex_spacing=0.12)
    path = tmp_path_factory.mktemp("scans") / "bare.ply"
    write_ply(path, scene.vertices, scene.faces)  # no colour: geometry only
    return path


def test_predict_on_a_scan_without_colour_writes_every_output(run, colourless_scan, tmp_path):
    out = tmp_path / "out"
    written = predict_scans(run, [colourless_scan], out)
    assert written == [out / "bare.txt"]
    num_vertices = len(read_ply(colourless_scan).vertices)
    masks, labels, scores = read_predictions(out, "bare", num_vertices)
    assert len(masks) > 0 and masks.shape[1] == num_vertices and np.all(labels == 1) and np.all(np.diff(scores) <= 0)
    ids = np.loadtxt(out / "bare_instances.txt", dtype=np.int64)
    assert ids.shape == (num_vertices,) and ids.min() >= 0 and ids.max() <= len(masks)
    for k in np.unique(ids[ids > 0]):
        assert masks[k - 1, ids == k].all()  # an instance id names a mask holding that vertex
    assert not masks[:, ids == 0].any()
    coloured = read_ply(out / "bare_instances.ply")
    assert len(coloured.vertices) == num_vertices and len(coloured.faces) > 0
    np.testing.assert_array_equal(coloured.colors, label_colors(ids - 1))


def test_predictor_is_deterministic_and_uses_the_runs_postprocessing(run, colourless_scan):
    from unscene3d.io.scan import load_scan

    predictor = Predictor.load(run)
    scene = load_scan(colourless_scan)
    first, second = predictor.predict(scene), predictor.predict(scene)
    np.testing.assert_array_equal(first.masks, second.masks)
    assert len(first.scores) <= predictor.config.postprocess.top_k


def test_predictions_ignore_the_scans_position_and_how_segments_are_labelled(run, colourless_scan):
    from unscene3d.io.scan import load_scan

    predictor = Predictor.load(run)
    scene = load_scan(colourless_scan)
    segments = segment_scene(scene).labels
    before = predictor.predict(scene, segments)
    scene.vertices = scene.vertices + np.array([0.005, -0.013, 2.0])  # not a whole number of voxels
    after = predictor.predict(scene, segments)
    np.testing.assert_array_equal(before.masks, after.masks)
    np.testing.assert_allclose(before.scores, after.scores, rtol=1e-4)
    relabelled = predictor.predict(scene, segments * 7 + 1000)  # any segment labels, e.g. ScanNet's seg ids
    np.testing.assert_array_equal(before.masks, relabelled.masks)


def test_a_colour_model_warns_on_a_colourless_scan_and_a_geometry_model_does_not(run, colourless_scan, tmp_path,
                                                                                  caplog):
    from unscene3d.io.scan import load_scan

    scene = load_scan(colourless_scan)
    with caplog.at_level(logging.WARNING, logger="unscene3d.predict"):
        Predictor.load(run).predict(scene)
    assert "trained with colour" in caplog.text
    caplog.clear()
    geometry_run = tmp_path / "geometry"
    self_train(run.parent / "pseudo", [run.parent / "room2.ply"], geometry_run, without_color(tiny_run_config(epochs=2)))
    predictor = Predictor.load(geometry_run)
    assert predictor.config.model.backbone.in_channels == 1  # the occupancy channel
    with caplog.at_level(logging.WARNING, logger="unscene3d.predict"):
        prediction = predictor.predict(scene)
    assert "trained with colour" not in caplog.text and prediction.masks.shape[1] == len(scene.vertices)


def test_cli_predict(run, colourless_scan, tmp_path):
    result = CliRunner().invoke(app, ["predict", str(run), str(colourless_scan), "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "bare.txt").is_file()


def test_a_backbone_checkpoint_is_not_a_segmentation_model(tmp_path, colourless_scan):
    backbone = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1,) * 8, init_dim=8)
    save_checkpoint(tmp_path / "pretrain", 1, {"w": torch.zeros(1)}, {}, {"backbone": backbone.to_dict()})
    with pytest.raises(InputError, match="not a self-training"):
        Predictor.load(tmp_path / "pretrain")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "pretrain"), str(colourless_scan), "-o",
                                      str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a self-training" in result.output


def test_a_checkpoint_whose_weights_do_not_fit_its_configuration(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    state_path = next((copy / "round_1" / "checkpoints").glob("step_*")) / "state.json"
    state = json.loads(state_path.read_text())
    state["train"]["model"]["decoder"]["hidden_dim"] = 32  # another configuration than the weights'
    state_path.write_text(json.dumps(state))
    with pytest.raises(InputError, match="do not match the model configuration"):
        Predictor.load(copy)


def test_a_folder_without_a_finished_round(tmp_path):
    with pytest.raises(InputError, match="no finished round"):
        Predictor.load(tmp_path)


def test_demo_adds_the_predictions_of_a_given_run(run, tmp_path):
    from unscene3d.demo import run_demo

    summary = run_demo(tmp_path, run=run, fit_rooms=0)
    figures = json.loads((tmp_path / "evaluation.json").read_text())
    assert set(figures) == {"felzenszwalb", "hdbscan", "pseudo_masks", "selftrained"}
    assert (tmp_path / "selftrained_instances.ply").is_file() and "selftrained" in summary
    with pytest.raises(InputError):
        run_demo(tmp_path / "again", run=tmp_path, fit_rooms=0)  # not a run folder: a clear error


def test_pseudo_masks_train_and_predict_on_point_clouds(tmp_path):
    from unscene3d.io.scan import load_scan
    from unscene3d.pseudo.pipeline import PseudoMaskOptions, read_pseudo_masks, run_pseudo_masks

    scene = make_synthetic_scene(2, vertex_spacing=0.1)
    colours = scene.colors.astype(np.float64) / 255.0
    np.save(tmp_path / "room2.npy", np.hstack([scene.vertices, colours]))  # x y z r g b, no faces
    written = run_pseudo_masks([tmp_path / "room2.npy"], tmp_path / "pseudo", PseudoMaskOptions())
    masks = read_pseudo_masks(written[0])
    assert masks.params["oversegmentation"]["graph"] == "points" and len(masks.segment_labels) == len(scene.vertices)
    result = self_train(tmp_path / "pseudo", [tmp_path / "room2.npy"], tmp_path / "run", tiny_run_config())
    assert result.rounds == [1]
    out = tmp_path / "out"
    predict_scans(tmp_path / "run", [tmp_path / "room2.npy"], out)
    ids = np.loadtxt(out / "room2_instances.txt", dtype=np.int64)
    assert ids.shape == (len(scene.vertices),) and load_scan(tmp_path / "room2.npy").faces.shape == (0, 3)


def test_predictions_of_an_organized_cloud_line_up_with_its_input_points(run, tmp_path, pcd_writer):
    scene = make_synthetic_scene(3, vertex_spacing=0.12)
    rows = np.full((2 * len(scene.vertices), 3), np.nan, dtype=np.float32)
    rows[::2] = scene.vertices  # every other pixel without depth
    path = pcd_writer(tmp_path / "frame.pcd", {"x": rows[:, 0], "y": rows[:, 1], "z": rows[:, 2]}, height=2,
                      encoding="binary")
    predict_scans(run, [path], tmp_path / "out", up="z")
    ids = np.loadtxt(tmp_path / "out" / "frame_instances.txt", dtype=np.int64)
    masks, _, _ = read_predictions(tmp_path / "out", "frame", len(rows))
    assert ids.shape == (len(rows),) and (ids[1::2] == 0).all() and not masks[:, 1::2].any()
    assert len(read_ply(tmp_path / "out" / "frame_instances.ply").vertices) == len(scene.vertices)
