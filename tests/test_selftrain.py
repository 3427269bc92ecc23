"""Self-training loop: schedule, configuration, training, checkpoints, resume, rounds and densification."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from unscene3d.errors import InputError
from unscene3d.instances import Instances
from unscene3d.io.ply import write_ply
from unscene3d.io.scan import load_scan
from unscene3d.model.backbone import BackboneConfig
from unscene3d.model.checkpoint import latest_checkpoint, load_checkpoint
from unscene3d.model.decoder import DecoderConfig
from unscene3d.model.mask3d import Mask3DConfig
from unscene3d.pseudo.pipeline import PseudoMasks, segment_scene, write_pseudo_masks
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train import selftrain
from unscene3d.train.augment import AugmentConfig
from unscene3d.train.selftrain import (
    SelfTrainConfig,
    load_model,
    one_cycle_lr,
    preset_config,
    read_added_masks,
    self_train,
)
from unscene3d.train.selftrain_data import load_training_scans, make_training_scan, pair_scans

EPOCHS = 12  # two scans, batch 2 -> one step per epoch


pytestmark = pytest.mark.usefixtures("two_torch_threads")


def tiny_config(**overrides) -> SelfTrainConfig:
    backbone = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1,) * 8, init_dim=8, stem_kernel=3,
                              norm="instance")
    decoder = DecoderConfig(level_channels=(16, 8, 12, 12), hidden_dim=16, num_heads=2, ffn_dim=32, num_queries=8,
                            num_passes=1, sample_sizes=(20, 40, 80, 160))
    values = dict(preset="test", model=Mask3DConfig(backbone, decoder), augment=AugmentConfig(crop_size=0, elastic=()),
                  epochs=EPOCHS, finetune_epochs=3, batch_size=2, lr=3e-3, finetune_lr=1e-3,
                  drop_loss_warmup=1.0, checkpoint_every=5, log_every=5)
    values.update(overrides)
    return SelfTrainConfig(**values)


def write_scan_with_gt_pseudo_masks(folder: Path, seed: int) -> Path:
    """A small synthetic room as a PLY file, and its ground-truth objects as pseudo masks over segments."""
    scene = make_synthetic_scene(seed, vertex_spacing=0.12)
    scene.name = f"room{seed}"
    segmentation = segment_scene(scene)
    labels, count = segmentation.labels, segmentation.num_segments
    sizes = np.bincount(labels, minlength=count)
    masks = []
    for instance in np.unique(scene.gt[(scene.gt % 1000 > 0) & (scene.gt // 1000 > 2)]):
        share = np.bincount(labels, weights=(scene.gt == instance).astype(float), minlength=count) / sizes
        if (share > 0.5).any():
            masks.append(share > 0.5)
    masks = np.array(masks)
    path = folder / f"{scene.name}.ply"
    write_pseudo_masks(folder / "pseudo", PseudoMasks(scene.name, labels, Instances(masks, np.ones(len(masks))), {},
                                                      path))
    write_ply(path, scene.vertices, scene.faces, scene.colors)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("selftrain_data")
    scans = [write_scan_with_gt_pseudo_masks(folder, seed) for seed in (0, 1)]
    return folder / "pseudo", scans


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    pseudo, scans = data
    run = tmp_path_factory.mktemp("selftrain_run") / "run"
    return run, self_train(pseudo, scans, run, tiny_config(), rounds=1)


def test_one_cycle_schedule_matches_torch_onecycle():
    total, max_lr = 40, 0.01
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=max_lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, cycle_momentum=False)
    for step in range(total):
        assert one_cycle_lr(step, total, max_lr) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        optimizer.step()
        scheduler.step()


def test_presets_and_config_round_trip():
    paper = preset_config("paper")
    assert paper.model.backbone.planes == (32, 64, 128, 256, 256, 128, 96, 96)
    assert (paper.model.decoder.hidden_dim, paper.model.decoder.num_heads, paper.model.decoder.ffn_dim) == (128, 8, 1024)
    assert (paper.epochs, paper.batch_size, paper.model.decoder.num_queries) == (600, 8, 100)
    assert paper.finetune_lr < paper.lr and 50 <= paper.finetune_epochs <= 70
    assert paper.loss.drop_loss and paper.densify.max_added == 5 and paper.densify.min_score == 0.1
    for config in (paper, preset_config("cpu-small", epochs=7), tiny_config()):
        assert SelfTrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert preset_config("cpu-small", epochs=7).epochs == 7
    with pytest.raises(InputError, match="unknown preset"):
        preset_config("huge")


def test_training_reduces_the_loss_and_writes_a_finished_round(trained):
    run, result = trained
    losses = result.losses[1]
    assert result.rounds == [1] and len(losses) == EPOCHS
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    with open(run / "round_1" / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(1, EPOCHS + 1))
    assert float(rows[-1]["loss"]) == pytest.approx(losses[-1], rel=1e-5)
    assert json.loads((run / "round_1" / "done.json").read_text())["steps"] == EPOCHS


def test_checkpoint_round_trip(trained):
    run, result = trained
    model, config = load_model(run)
    assert config == tiny_config() and not model.training
    saved = load_file(str(result.checkpoint / "model.safetensors"))
    state = model.state_dict()
    assert set(saved) == set(state)
    for name, tensor in saved.items():
        assert torch.equal(state[name], tensor), name
    assert load_model(result.checkpoint)[1] == config  # the checkpoint folder itself works too


def test_resume_continues_the_step_count_and_the_same_losses(data, trained, tmp_path):
    pseudo, scans = data
    _, uninterrupted = trained
    run = tmp_path / "run"
    first = self_train(pseudo, scans, run, tiny_config(), max_steps=5)
    assert first.rounds == [] and len(first.losses[1]) == 5
    assert latest_checkpoint(run / "round_1").name == "step_0000005"
    with pytest.raises(InputError, match="--resume"):
        self_train(pseudo, scans, run, tiny_config())
    second = self_train(pseudo, scans, run, resume=True)  # the run's own configuration
    assert second.rounds == [1] and len(second.losses[1]) == EPOCHS - 5
    np.testing.assert_allclose(first.losses[1] + second.losses[1], uninterrupted.losses[1], rtol=1e-4)
    with open(run / "round_1" / "log.csv") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == list(range(1, EPOCHS + 1))


def test_a_resumed_segment_round_repeats_the_uninterrupted_one_exactly(data, tmp_path):
    """Bit for bit: losses, weights, optimizer state (the voxel model's weights, measured, differ in the
    last bits when its sparse convolutions run on two threads: hence the tolerance above)."""
    pseudo, scans = data
    config = preset_config("segment", steps=3, batch_size=1)
    full = self_train(pseudo, scans, tmp_path / "full", config)
    first = self_train(pseudo, scans, tmp_path / "split", config, max_steps=2)
    second = self_train(pseudo, scans, tmp_path / "split", resume=True)
    assert first.losses[1] + second.losses[1] == full.losses[1]
    a, b = (load_checkpoint(full.checkpoint, with_optimizer=True), load_checkpoint(second.checkpoint, with_optimizer=True))
    assert a.step == b.step == 3 and set(a.model) == set(b.model) and set(a.optimizer) == set(b.optimizer)
    for name in a.model:
        assert torch.equal(a.model[name], b.model[name]), name
    for name in a.optimizer:
        assert torch.equal(a.optimizer[name], b.optimizer[name]), name


def test_rounds_save_densified_masks_and_finished_rounds_are_skipped(data, trained, tmp_path):
    pseudo, scans = data
    run = tmp_path / "run"
    shutil.copytree(trained[0], run, symlinks=True)
    result = self_train(pseudo, scans, run, rounds=2)
    assert result.rounds == [2] and len(result.losses[2]) == 3
    for scan in load_training_scans(pseudo, scans, tiny_config().model):
        added = read_added_masks(run / "round_2" / "added" / f"{scan.name}.npz", scan.num_segments)
        assert not (added & scan.pseudo_masks.any(0)).any()  # only uncovered parts are added
        assert (run / "round_2" / "added" / f"{scan.name}.txt").is_file()
    assert json.loads((run / "round_2" / "done.json").read_text())["round"] == 2
    assert self_train(pseudo, scans, run, rounds=2).rounds == []


def test_densification_adds_uncovered_whole_segments(data, tmp_path, monkeypatch):
    pseudo, scans = data
    scan = make_training_scan(load_scan(scans[0]), pseudo / "room0.npz", tiny_config().model)
    uncovered_segments = np.flatnonzero(~scan.pseudo_masks.any(0))[:3]
    new = np.isin(scan.segments, uncovered_segments)
    known = scan.pseudo_masks[0][scan.segments]
    prediction = Instances(np.stack([new, known, new]), [0.9, 0.8, 0.05], queries=np.arange(3))
    monkeypatch.setattr(selftrain, "predict_scene", lambda *args: prediction)
    assert selftrain.densify_scans(None, [scan], tiny_config(), tmp_path) == 1
    expected = np.zeros(scan.num_segments, dtype=bool)
    expected[uncovered_segments] = True
    np.testing.assert_array_equal(scan.added_masks, expected[None])
    np.testing.assert_array_equal(read_added_masks(tmp_path / f"{scan.name}.npz", scan.num_segments), expected[None])
    # a round's union: the pseudo masks with their scores (query -1), then the added mask ranked below them
    from unscene3d.fit import round_masks

    pseudo_scores = np.linspace(1.0, 0.5, len(scan.pseudo_masks))
    union = round_masks(None, scan, tiny_config(), "union", pseudo_scores)
    assert union.queries.tolist() == [-1] * len(pseudo_scores) + [0]
    np.testing.assert_array_equal(union.masks, np.concatenate([scan.pseudo_masks, expected[None]])[:, scan.segments])
    assert union.scores[:-1].tolist() == pseudo_scores.tolist() and 0 < union.scores[-1] < 0.5


def test_a_run_folder_keeps_its_configuration(data, trained):
    pseudo, scans = data
    with pytest.raises(InputError, match="another configuration"):
        self_train(pseudo, scans, trained[0], tiny_config(lr=1e-2))


def test_scans_come_from_the_pseudo_mask_files_unless_given(data, tmp_path):
    pseudo, scans = data
    assert pair_scans(pseudo) == [(pseudo / "room0.npz", scans[0]), (pseudo / "room1.npz", scans[1])]
    moved = tmp_path / "room1.ply"
    shutil.copy(scans[1], moved)
    assert pair_scans(pseudo, [moved])[1] == (pseudo / "room1.npz", moved)


def test_pseudo_masks_without_their_scan_are_reported(data, tmp_path):
    pseudo, scans = data
    old = tmp_path / "old"
    old.mkdir()
    scan = make_training_scan(load_scan(scans[0]), pseudo / "room0.npz", tiny_config().model)
    labels, first = scan.segments, Instances(scan.pseudo_masks[:1], [1.0])
    write_pseudo_masks(old, PseudoMasks("room0", labels, first, {}))
    with pytest.raises(InputError, match="no scan named 'room0'.*records none"):
        pair_scans(old)
    write_pseudo_masks(old, PseudoMasks("room0", labels, first, {}, tmp_path / "gone.ply"))
    with pytest.raises(InputError, match="gone.ply, is gone"):
        pair_scans(old)
