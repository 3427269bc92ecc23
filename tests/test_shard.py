"""``--shard I/N`` on the dataset stages: N shards run into one folder write exactly what one run writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.io.ply import write_ply
from unscene3d.io.scan import Shard
from unscene3d.model.backbone import BackboneConfig, build_backbone
from unscene3d.model.checkpoint import save_checkpoint
from unscene3d.synthetic import make_synthetic_scene

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
SHARDS = 2
TINY_BACKBONE = BackboneConfig(planes=(8, 8, 16, 16, 16, 8, 12, 12), layers=(1,) * 8, init_dim=8, stem_kernel=3)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Three small generated rooms (PLY meshes) and a tiny backbone checkpoint."""
    root = tmp_path_factory.mktemp("shard")
    for seed in (3, 1, 2):  # written out of order: shards take the scans sorted by name
        scene = make_synthetic_scene(seed, vertex_spacing=0.2)
        write_ply(root / "scans" / f"room{seed}.ply", scene.vertices, scene.faces, scene.colors)
    model = build_backbone(TINY_BACKBONE, seed=0)
    save_checkpoint(root / "backbone", 1, model.state_dict(), {}, {"backbone": TINY_BACKBONE.to_dict()})
    return root


def invoke(*args: object) -> str:
    result = runner.invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result.output


def tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


STAGES = {
    "oversegment": lambda root, out: ["oversegment", root / "scans", "-o", out],
    "baseline": lambda root, out: ["baseline", "felzenszwalb", root / "scans", "-o", out],
    "pseudo-masks": lambda root, out: ["pseudo-masks", root / "scans", "-o", out],
    "features3d": lambda root, out: ["features3d", root / "backbone", root / "scans", "-o", out],
    "predict": lambda root, out: ["predict", root / "scans", "-o", out],
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_shards_together_write_what_one_run_writes_byte_for_byte(inputs, tmp_path, stage):
    command = STAGES[stage]
    (tmp_path / "one").mkdir()
    (tmp_path / "sharded").mkdir()
    invoke(*command(inputs, tmp_path / "one"))
    for index in range(1, SHARDS + 1):
        invoke(*command(inputs, tmp_path / "sharded"), "--shard", f"{index}/{SHARDS}")
    whole = tree(tmp_path / "one")
    assert whole and tree(tmp_path / "sharded") == whole


def test_fit_shards_write_the_pseudo_masks_of_one_run_and_train_nothing(inputs, tmp_path):
    invoke("pseudo-masks", inputs / "scans", "-o", tmp_path / "pseudo")
    for index in range(1, SHARDS + 1):
        output = invoke("fit", inputs / "scans", "-o", tmp_path / "run", "--shard", f"{index}/{SHARDS}")
        assert "without --shard" in output
    assert tree(tmp_path / "run" / "pseudo") == tree(tmp_path / "pseudo")
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["pseudo"]


def test_a_shard_takes_every_nth_scan_by_sorted_name_and_the_shards_cover_each_scan_once(tmp_path):
    paths = [tmp_path / f"room{n}.ply" for n in (5, 0, 3, 1, 4, 2, 6)]
    for path in paths:
        path.touch()  # names are found without reading the files
    shards = [Shard(index, 3).select(paths) for index in (1, 2, 3)]
    assert [[path.stem for path in shard] for shard in shards] == [
        ["room0", "room3", "room6"], ["room1", "room4"], ["room2", "room5"]]
    assert Shard(4, 4).select(paths[:2]) == []


def test_a_shard_without_scans_says_so_and_writes_nothing(inputs, tmp_path):
    result = runner.invoke(app, ["baseline", "felzenszwalb", str(inputs / "scans" / "room1.ply"), "-o",
                                 str(tmp_path / "out"), "--shard", "2/2"])
    assert result.exit_code == 0 and "shard 2/2: no scans to do" in result.stderr
    assert not (tmp_path / "out").exists()
