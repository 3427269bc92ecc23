"""The pseudo-mask stage end to end: files, skipping, parallel scans, modalities, CLI."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.errors import InputError
from unscene3d.io.benchmark import read_predictions
from unscene3d.io.ply import write_ply
from unscene3d.pseudo.pipeline import (
    PseudoMaskOptions,
    pseudo_masks_for_scene,
    read_pseudo_masks,
    run_pseudo_masks,
)
from unscene3d.synthetic import make_synthetic_scene


def small_scene(seed: int):
    return make_synthetic_scene(seed, vertex_spacing=0.07)


@pytest.fixture(scope="module")
def scan_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("scans")
    paths = []
    for seed in (0, 1):
        scene = small_scene(seed)
        path = folder / f"room{seed}.ply"
        write_ply(path, scene.vertices, scene.faces, scene.colors)
        paths.append(path)
    return paths


def test_writes_benchmark_files_and_npz_and_skips_done_scans(scan_files, tmp_path) -> None:
    out = tmp_path / "pseudo"
    written = run_pseudo_masks([scan_files[0]], out, PseudoMaskOptions())
    assert written == [out / "room0.npz"]
    masks = read_pseudo_masks(written[0])
    vertex_masks = masks.vertex_masks()
    assert len(masks.scores) >= 1 and masks.segment_masks.shape[1] == masks.segment_labels.max() + 1
    bench_masks, _, bench_scores = read_predictions(out, "room0", len(masks.segment_labels))
    np.testing.assert_array_equal(bench_masks, vertex_masks)
    np.testing.assert_allclose(bench_scores, masks.scores)
    assert masks.params["modality"] == "handcrafted" and masks.params["ncut"]["tau"] == 0.6
    assert masks.params["oversegmentation"]["variant"] == "unscene3d"
    assert not (vertex_masks.sum(axis=0) > 1).any()  # masks do not overlap
    assert masks.scan_path == scan_files[0].resolve()  # training finds the scan through it

    stamp = written[0].stat().st_mtime_ns
    run_pseudo_masks([scan_files[0]], out, PseudoMaskOptions())
    assert written[0].stat().st_mtime_ns == stamp  # done: skipped
    run_pseudo_masks([scan_files[0]], out, PseudoMaskOptions(tau=0.7), force=True)
    assert read_pseudo_masks(written[0]).params["ncut"]["tau"] == 0.7


def test_parallel_workers_process_a_folder_of_scans(scan_files, tmp_path) -> None:
    out = tmp_path / "pseudo"
    written = run_pseudo_masks([scan_files[0].parent], out, PseudoMaskOptions(), workers=2)
    assert sorted(p.name for p in written) == ["room0.npz", "room1.npz"]
    assert all(p.is_file() and (out / f"{p.stem}.txt").is_file() for p in written)


def test_3d_modality_uses_the_backbone_features(monkeypatch) -> None:
    import unscene3d.features.features3d as features3d

    scene = small_scene(0)
    calls = []

    def fake_features(checkpoint, scan, *, device=None):
        calls.append(checkpoint)
        # a stand-in for learned features: ground-truth instance one-hot, so NCut must find objects
        instance = np.unique(scan.gt, return_inverse=True)[1]
        return np.eye(instance.max() + 1, dtype=np.float32)[instance]

    monkeypatch.setattr(features3d, "extract_vertex_features", fake_features)
    result = pseudo_masks_for_scene(scene, PseudoMaskOptions(modality="3d", checkpoint="ckpt"))
    assert calls == ["ckpt"] and result.params["ncut"]["tau"] == 0.55
    masks = result.vertex_masks()
    assert len(masks) >= 3
    # segments of one instance share a feature, so a cut never splits an instance (segments straddling
    # two instances aside): each instance is almost all inside one mask or almost all outside
    for instance in np.unique(scene.gt):
        inside = masks[:, scene.gt == instance].mean(axis=1)
        assert inside.max() > 0.85 or inside.sum() < 0.15


def test_bad_inputs(scan_files, tmp_path, caplog) -> None:
    with pytest.raises(InputError, match="checkpoint"):
        PseudoMaskOptions(modality="3d")
    with pytest.raises(InputError, match="frames"):
        pseudo_masks_for_scene(small_scene(0), PseudoMaskOptions(modality="2d", encoder="any"))
    with pytest.raises(InputError, match="no scans found"):
        run_pseudo_masks([tmp_path], tmp_path / "out", PseudoMaskOptions())
    scene = small_scene(1)
    scene.colors = None
    with caplog.at_level(logging.WARNING):
        result = pseudo_masks_for_scene(scene, PseudoMaskOptions())
    assert "no vertex colours" in caplog.text and result.params["oversegmentation"]["variant"] == "scannet"


def test_cli(scan_files, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(app, ["pseudo-masks", str(scan_files[1]), "-o", str(out), "--modality", "handcrafted"])
    assert result.exit_code == 0, result.output
    assert (out / "room1.npz").is_file() and (out / "room1.txt").is_file()
    result = runner.invoke(app, ["pseudo-masks", str(scan_files[1]), "-o", str(out), "--modality", "both"])
    assert result.exit_code == 2 and "checkpoint" in result.output


def test_cli_rejects_an_unknown_modality(scan_files, tmp_path) -> None:
    result = CliRunner().invoke(app, ["pseudo-masks", str(scan_files[0]), "-o", str(tmp_path), "--modality", "rgb"])
    assert result.exit_code == 2 and "modality must be one of" in result.output
