"""Re-running ``fit`` on a run folder: what ``run.json`` records decides what is reused, made again or refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unscene3d.cli import app
from unscene3d.fit import FitOptions, fit, plan_rerun
from unscene3d.instances import Instances
from unscene3d.io.ply import write_ply
from unscene3d.model.checkpoint import latest_checkpoint, load_checkpoint
from unscene3d.proposals.self_training import SelfTrainingConfig
from unscene3d.pseudo.pipeline import PseudoMasks, read_pseudo_masks, write_pseudo_masks
from unscene3d.run_record import RUN_FILE, read_record, scan_digest, training_record, write_record
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.train.selftrain import preset_config, round_dir
from unscene3d.train.selftrain_data import pair_scans

pytestmark = pytest.mark.usefixtures("two_torch_threads")
runner = CliRunner()


def room(path: Path, seed: int, spacing: float = 0.2) -> Path:
    scene = make_synthetic_scene(seed, vertex_spacing=spacing)
    write_ply(path, scene.vertices, scene.faces, scene.colors)
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished one-round run of two rooms (scans/a.ply, scans/b.ply), the union masks."""
    root = tmp_path_factory.mktemp("rerun")
    room(root / "scans" / "a.ply", 1)
    room(root / "scans" / "b.ply", 2)
    room(root / "other" / "a.ply", 3, spacing=0.25)  # another scan with a's name
    room(root / "more" / "c.ply", 4)
    config = preset_config("segment", steps=3, finetune_steps=2, batch_size=1)
    fit([root / "scans" / "a.ply", root / "scans" / "b.ply"], root / "run",
        FitOptions(rounds=1, config=config, self_training=SelfTrainingConfig(rounds=0)))
    return root


@pytest.fixture
def work(finished, tmp_path) -> Path:
    """A copy of the finished run and its scans (modification times kept, so digests are reused)."""
    for name in ("scans", "other", "more", "run"):
        shutil.copytree(finished / name, tmp_path / name, symlinks=True)
    record = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    for digest in record["scans"].values():  # the copy's scans are where the copied record looks for them
        digest["path"] = digest["path"].replace(str(finished), str(tmp_path))
    (tmp_path / "run" / RUN_FILE).write_text(json.dumps(record))
    return tmp_path


def invoke(*args: object):
    return runner.invoke(app, [str(arg) for arg in args])


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if not p.is_symlink()}


def mask_length(folder: Path, scene: str) -> int:
    """Lines of the first mask file a benchmark listing names: the points the masks were made for."""
    first = (folder / f"{scene}.txt").read_text().split()[0]
    return len((folder / first).read_text().splitlines())


def vertex_count(ply: Path) -> int:
    from unscene3d.io.scan import load_scan

    return load_scan(ply, load_frames=False).input_size


def trained_on(run: Path) -> list[str]:
    return load_checkpoint(latest_checkpoint(round_dir(run, 1))).state["scans"]


def test_the_run_records_its_scans_by_content_its_options_and_the_code(finished):
    record = read_record(finished / "run")
    assert record.command == "fit" and set(record.scans) == {"a", "b"}
    assert record.scans["a"].blake2b == scan_digest(finished / "scans" / "a.ply").blake2b
    assert record.options["masks"] == "union" and "device" not in record.options["pseudo"]
    assert set(record.code) == {"unscene3d", "source"}


def test_another_scan_with_the_same_name_gets_its_own_pseudo_masks_and_rounds(work):
    run, other = work / "run", work / "other" / "a.ply"
    assert vertex_count(other) != vertex_count(work / "scans" / "a.ply")
    result = invoke("fit", other, work / "scans" / "b.ply", "-o", run, "--rounds", "1", "--ranker-rounds", "0")
    assert result.exit_code == 0, result.output
    for folder in (run / "pseudo", run / "predictions" / "round_1"):
        assert mask_length(folder, "a") == vertex_count(other)  # not the old scan's masks
    assert read_record(run).scans["a"].blake2b == scan_digest(other).blake2b
    assert sorted(trained_on(run)) == ["a", "b"]


def test_other_masks_on_a_finished_run_write_every_round_again(work):
    run = work / "run"
    result = invoke("fit", work / "scans", "-o", run, "--rounds", "1", "--ranker-rounds", "0", "--masks", "model")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "predictions" / "round_1" / "done.json").read_text())["output"] == "model"
    assert read_record(run).options["masks"] == "model"


def test_a_scan_added_to_a_finished_run_gets_pseudo_masks_and_the_rounds_are_trained_again(work):
    run = work / "run"
    result = invoke("fit", work / "scans", work / "more" / "c.ply", "-o", run, "--rounds", "1", "--ranker-rounds", "0")
    assert result.exit_code == 0, result.output
    assert sorted(trained_on(run)) == ["a", "b", "c"]
    assert mask_length(run / "predictions" / "round_1", "c") == vertex_count(work / "more" / "c.ply")
    assert set(read_record(run).scans) == {"a", "b", "c"}


def test_an_unchanged_rerun_reuses_everything(work):
    run = work / "run"
    before = {path: stamp for path, stamp in snapshot(run).items() if not path.startswith(("index.html", RUN_FILE))}
    result = invoke("fit", work / "scans", "-o", run, "--rounds", "1", "--ranker-rounds", "0")
    assert result.exit_code == 0, result.output
    after = snapshot(run)
    assert {path: after[path] for path in before} == before


def test_other_ranker_rounds_train_the_ranker_and_every_round_again(work):
    paths = [work / "scans" / "a.ply", work / "scans" / "b.ply"]
    same = plan_rerun(work / "run", paths, FitOptions(rounds=1, self_training=SelfTrainingConfig(rounds=0)))
    assert not same.retrain and not same.notes
    other = plan_rerun(work / "run", paths, FitOptions(rounds=1, self_training=SelfTrainingConfig(rounds=2)))
    assert other.retrain and other.notes == ["the run's ranker rounds were made with other settings (differs in: "
                                             "rounds): they and every round after them are made again"]
    assert other.record.options["ranker_self_training"]["rounds"] == 2


# Re-runs that cannot continue the run: (case, how the re-run differs, what the one error line holds).
REFUSED = {
    "a_scan_left_out": (lambda work: ["fit", work / "scans" / "a.ply", "-o", work / "run", "--rounds", "1", "--ranker-rounds", "0"],
                        "run: the run was made from 2 scans, and b is not among those given now"),
    "another_training_configuration": (
        lambda work: ["fit", work / "scans", "-o", work / "run", "--rounds", "1", "--ranker-rounds", "0", "--seed", "7"],
        "differs in: "),
    "another_release_of_the_code": (
        lambda work: _edit_record(work, lambda record: record["code"].update(unscene3d="0.0.1"))
        + ["fit", work / "scans", "-o", work / "run", "--rounds", "1", "--ranker-rounds", "0"],
        "run: made by unscene3d 0.0.1, this is"),
    "other_pseudo_mask_options": (
        lambda work: _edit_record(work, lambda record: record["options"]["pseudo"].update(frame_step=5))
        + ["fit", work / "scans", "-o", work / "run", "--rounds", "1", "--ranker-rounds", "0"],
        "pseudo masks were made with other options (differs in: frame_step)"),
    "a_run_made_before_run_records": (
        lambda work: [(work / "run" / RUN_FILE).unlink(), "fit", work / "scans", "-o", work / "run"][1:],
        "holds training rounds but no run.json"),
}


def _edit_record(work: Path, edit) -> list:
    path = work / "run" / RUN_FILE
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    return []


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_rerun_that_cannot_continue_stops_before_writing_with_one_line(work, case):
    command, blame = REFUSED[case]
    args = command(work)
    before = snapshot(work)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and blame in result.stderr, result.stderr
    assert snapshot(work) == before


def _pseudo_copy(work: Path, name: str) -> Path:
    return Path(shutil.copytree(work / "run" / "pseudo", work / name))


def _rescored(pseudo: Path) -> None:
    """a.npz with other scores (the same scan)."""
    masks = read_pseudo_masks(pseudo / "a.npz")
    rescored = Instances(masks.instances.masks, masks.instances.scores * 0.5)
    write_pseudo_masks(pseudo, PseudoMasks("a", masks.segment_labels, rescored, masks.params, masks.scan_path))


TRAIN_REFUSED = {
    "a_scan_left_out": (lambda pseudo: (pseudo / "b.npz").unlink(), "trained on other scans (missing: b)"),
    "other_pseudo_masks": (_rescored, "trained on other pseudo masks (of a)"),
}


@pytest.mark.parametrize("case", list(TRAIN_REFUSED))
def test_train_on_a_run_trained_on_other_inputs_stops_before_writing_with_one_line(work, case):
    edit, blame = TRAIN_REFUSED[case]
    trained = _pseudo_copy(work, "pseudo_trained")
    write_record(work / "trained", training_record(work / "trained", pair_scans(trained)))
    edit(_pseudo_copy(work, "pseudo_now"))
    before = snapshot(work)
    result = invoke("train", work / "pseudo_now", "-o", work / "trained")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and blame in result.stderr, result.stderr
    assert snapshot(work) == before
