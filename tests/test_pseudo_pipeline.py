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
    written = run_pseudo_masks([scan_files[0]], out, PseudoMaskOptions(source="ncut"))
    assert written == [out / "room0.npz"]
    masks = read_pseudo_masks(written[0])
    scores, vertex_masks = masks.instances.scores, masks.vertex_instances().masks
    assert len(scores) >= 1 and masks.instances.num_units == masks.segment_labels.max() + 1
    bench_masks, _, bench_scores = read_predictions(out, "room0", len(masks.segment_labels))
    np.testing.assert_array_equal(bench_masks, vertex_masks)
    np.testing.assert_allclose(bench_scores, scores)
    # the cut with no weights given: geometric descriptors, structure left out, spatial cuts
    assert masks.params["modality"] == "geometric" and masks.params["cut"] == "spatial"
    assert masks.params["structure"]["floor"] >= 1 and masks.params["structure"]["wall"] >= 1
    assert masks.params["oversegmentation"]["variant"] == "unscene3d"
    assert len(scores) <= 20 and np.all(np.diff(scores) <= 0)  # ranked by objectness
    assert not (vertex_masks.sum(axis=0) > 1).any()  # masks do not overlap
    assert masks.scan_path == scan_files[0].resolve()  # training finds the scan through it

    stamp = written[0].stat().st_mtime_ns
    run_pseudo_masks([scan_files[0]], out, PseudoMaskOptions(source="ncut"))
    assert written[0].stat().st_mtime_ns == stamp  # done: skipped
    run_pseudo_masks([scan_files[0]], out, PseudoMaskOptions(tau=0.7, cut="official"), force=True)
    assert read_pseudo_masks(written[0]).params["ncut"]["tau"] == 0.7


def test_parallel_workers_process_a_folder_of_scans(scan_files, tmp_path) -> None:
    out = tmp_path / "pseudo"
    written = run_pseudo_masks([scan_files[0].parent], out, PseudoMaskOptions(), workers=2)
    assert sorted(p.name for p in written) == ["room0.npz", "room1.npz"]
    assert all(p.is_file() and (out / f"{p.stem}.txt").is_file() for p in written)


def fake_backbone(monkeypatch, features) -> tuple[list, list]:
    """Stand in for the backbone: ``features(scene)`` as its output; returns the checkpoints loaded and the
    models run, in order."""
    import unscene3d.features.features3d as features3d

    loads, runs = [], []

    def load_backbone(checkpoint, device=None):
        loads.append(checkpoint)
        return f"model {len(loads)}", None

    def extract_vertex_features(model, scene, *, device=None):
        runs.append(model)
        return features(scene)

    monkeypatch.setattr(features3d, "load_backbone", load_backbone)
    monkeypatch.setattr(features3d, "extract_vertex_features", extract_vertex_features)
    return loads, runs


def test_3d_modality_uses_the_backbone_features(monkeypatch) -> None:
    scene = small_scene(0)

    def instance_one_hot(scan):
        # a stand-in for learned features: ground-truth instance one-hot, so NCut must find objects
        instance = np.unique(scan.gt, return_inverse=True)[1]
        return np.eye(instance.max() + 1, dtype=np.float32)[instance]

    loads, _ = fake_backbone(monkeypatch, instance_one_hot)
    official = pseudo_masks_for_scene(
        scene, PseudoMaskOptions(modality="3d", checkpoint="ckpt", cut="official", structure=False)
    )
    assert loads == ["ckpt"] and official.params["ncut"]["tau"] == 0.55
    spatial = pseudo_masks_for_scene(scene, PseudoMaskOptions(modality="auto", checkpoint="ckpt"))
    assert spatial.params["modality"] == "3d" and spatial.params["graph"]["feature_distance"] == "cosine"
    # segments of one instance share a feature, so a cut never splits an instance between two masks
    # (segments straddling two instances aside; with structure left out, an object lying in a wall's
    # plane may lose its part there)
    for result in (official, spatial):
        masks = result.vertex_instances().masks
        assert len(masks) >= 3
        for instance in np.unique(scene.gt):
            inside = np.sort(masks[:, scene.gt == instance].mean(axis=1))
            assert inside[-2] < 0.15
    for instance in np.unique(scene.gt):  # official, no structure: all of an instance or none of it
        inside = official.vertex_instances().masks[:, scene.gt == instance].mean(axis=1)
        assert inside.max() > 0.85 or inside.sum() < 0.15


def test_the_backbone_loads_once_for_all_scans_of_a_worker(scan_files, tmp_path, monkeypatch) -> None:
    loads, runs = fake_backbone(monkeypatch, lambda scene: scene.colors.astype(np.float32))
    written = run_pseudo_masks(scan_files, tmp_path / "pseudo", PseudoMaskOptions(modality="3d", checkpoint="ckpt"))
    assert loads == ["ckpt"] and runs == ["model 1", "model 1"]  # one load, applied to both scans
    assert [read_pseudo_masks(path).params["modality"] for path in written] == ["3d", "3d"]


def test_features_read_from_a_features3d_folder_give_the_same_masks(scan_files, tmp_path) -> None:
    from unscene3d.features.features3d import extract_features_for_scans
    from unscene3d.model.backbone import BackboneConfig, build_backbone
    from unscene3d.model.checkpoint import save_checkpoint

    tiny = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1,) * 8, init_dim=8, stem_kernel=3)
    checkpoint, features = tmp_path / "checkpoint", tmp_path / "features"
    save_checkpoint(checkpoint, 1, build_backbone(tiny, seed=0).state_dict(), {}, {"backbone": tiny.to_dict()})
    extract_features_for_scans(checkpoint, scan_files, features, device="cpu")
    computed = run_pseudo_masks(scan_files, tmp_path / "computed",
                                PseudoMaskOptions(modality="3d", checkpoint=str(checkpoint), device="cpu"))
    result = CliRunner().invoke(app, ["pseudo-masks", *map(str, scan_files), "-o", str(tmp_path / "read"),
                                      "--features3d", str(features)])
    assert result.exit_code == 0, result.output
    for path in computed:
        expected, read = read_pseudo_masks(path), read_pseudo_masks(tmp_path / "read" / path.name)
        assert len(expected.instances) > 0
        np.testing.assert_array_equal(read.instances.masks, expected.instances.masks)
        np.testing.assert_array_equal(read.instances.scores, expected.instances.scores)
        assert read.params["modality"] == "3d" and read.params["features3d"] == str(features)
        assert read.params["checkpoint"] is None and expected.params["checkpoint"] == str(checkpoint)


def test_official_cut_without_structure_is_the_official_masked_ncut() -> None:
    from unscene3d.features.handcrafted import handcrafted_segment_features
    from unscene3d.pseudo.ncut import NCutConfig, masked_ncut
    from unscene3d.pseudo.pipeline import segment_scene

    scene = small_scene(2)
    result = pseudo_masks_for_scene(scene, PseudoMaskOptions(modality="handcrafted", cut="official", structure=False))
    segmentation = segment_scene(scene)
    features = handcrafted_segment_features(scene, segmentation.labels, segmentation.num_segments,
                                            segmentation.adjacency)
    expected = masked_ncut(features, segmentation.adjacency, NCutConfig(tau=0.6))
    np.testing.assert_array_equal(result.instances.masks, expected.masks)
    np.testing.assert_array_equal(result.instances.scores, expected.scores())
    assert result.params["structure"] is None


def test_structure_is_never_part_of_a_mask() -> None:
    scene = small_scene(3)
    for cut in ("spatial", "official"):
        result = pseudo_masks_for_scene(scene, PseudoMaskOptions(cut=cut))
        kinds = result.params["structure"]
        assert kinds["floor"] >= 1 and kinds["wall"] >= 4
    from unscene3d.pseudo.pipeline import segment_scene
    from unscene3d.segments import detect_structure, segment_geometry

    segmentation = segment_scene(scene)
    structure = detect_structure(scene.vertices, segment_geometry(scene, segmentation.labels,
                                                                  segmentation.num_segments))
    for cut in ("spatial", "official"):
        result = pseudo_masks_for_scene(scene, PseudoMaskOptions(source="ncut", cut=cut))
        assert not (result.instances.masks & structure.is_structure).any()


def test_the_default_source_is_the_model_of_objects(scan_files, tmp_path) -> None:
    options = PseudoMaskOptions()
    assert options.resolved_source() == "model"
    assert PseudoMaskOptions(tau=0.7).resolved_source() == "ncut"  # an option of the cut asks for the cut
    written = run_pseudo_masks([scan_files[0]], tmp_path / "pseudo", options)
    masks = read_pseudo_masks(written[0])
    scores = masks.instances.scores
    assert masks.params["source"] == "model" and 1 <= len(scores) <= 100
    assert np.all(np.diff(scores) <= 0) and np.all(scores >= 0.05)  # ranked, confident ones only
    assert (masks.vertex_instances().masks.sum(axis=1) >= 100).all()


def test_auto_modality_picks_the_best_available_features() -> None:
    scene = small_scene(0)
    assert PseudoMaskOptions().resolved_modality(scene) == "geometric"
    assert PseudoMaskOptions(checkpoint="c").resolved_modality(scene) == "3d"
    assert PseudoMaskOptions(encoder="e").resolved_modality(scene) == "geometric"  # no frames: warned, skipped
    scene.frames = [object()]  # only their presence matters here
    assert PseudoMaskOptions(encoder="e").resolved_modality(scene) == "2d"
    assert PseudoMaskOptions(encoder="e", checkpoint="c").resolved_modality(scene) == "both"
    assert PseudoMaskOptions(modality="handcrafted", checkpoint="c").resolved_modality(scene) == "handcrafted"


def test_felzenszwalb_source_takes_coarse_segments_as_masks() -> None:
    from unscene3d.oversegment import oversegment

    scene = small_scene(1)
    result = pseudo_masks_for_scene(scene, PseudoMaskOptions(source="felzenszwalb"))
    coarse = oversegment(scene.vertices, scene.faces, scene.colors, variant="scannet", k_thresh=0.05, min_verts=500)
    np.testing.assert_array_equal(result.segment_labels, coarse.labels)
    sizes = result.vertex_instances().masks.sum(axis=1)
    assert (result.instances.masks.sum(axis=1) == 1).all() and (sizes >= 100).all()
    np.testing.assert_allclose(result.instances.scores, sizes / scene.num_vertices)
    assert np.all(np.diff(result.instances.scores) <= 0)


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
