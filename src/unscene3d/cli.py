"""The ``unscene3d`` command: one sub-command per pipeline stage.

Each command is a thin layer over a library function. Before any work it checks its options, its
output paths and its inputs. Errors in user input are printed as one line (``error: <file>: <problem>``)
with exit code 2; any other exception is a bug: one line saying so and where its traceback was written,
exit code 1 (``--debug`` prints the traceback instead).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from unscene3d.checks import (
    FLOAT32_MAX,
    check_choice,
    check_count,
    check_device,
    check_number,
    check_output_dir,
    check_output_file,
    check_pseudo_mask_inputs,
    check_pseudo_masks,
    require_voxel_grid,
)
from unscene3d.cli_guard import guarded
from unscene3d.cli_help import Command, Group
from unscene3d.errors import InputError
from unscene3d.protocols import PROTOCOLS

if TYPE_CHECKING:
    from unscene3d.io.scan import Shard

app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Unsupervised 3D instance segmentation of indoor scans (UnScene3D).",
)
log = logging.getLogger("unscene3d")


class Variant(str, Enum):
    scannet = "scannet"
    unscene3d = "unscene3d"


class Baseline(str, Enum):
    felzenszwalb = "felzenszwalb"
    hdbscan = "hdbscan"


class UpAxis(str, Enum):
    z = "z"
    y = "y"
    minus_y = "-y"
    x = "x"
    minus_x = "-x"
    minus_z = "-z"


class ScanKind(str, Enum):
    auto = "auto"
    room = "room"
    tabletop = "tabletop"


_SCANS_HELP = "Scans: mesh or point cloud files, scan folders, or folders of them."
# One definition of the options that say what a scan is, shared by every command that reads scans
# (unscene3d.profile infers each when it is not given, and logs what it inferred).
UP_OPTION = typer.Option(None, "--up", help="The scan's up axis (default: inferred: the format's convention, else "
                         "the floor; a tabletop is levelled on its support plane).")
SCALE_OPTION = typer.Option(None, "--scale", help="Multiply coordinates by this to get metres (default: inferred: "
                            "metres, or millimetres / kilometres when the scan is 1000x too large / small).")
KIND_OPTION = typer.Option(ScanKind.auto, "--kind", help="room or tabletop (a depth frame of a table, ~1 m; its "
                           "settings are scaled to it); default: by the scan's extent.")
_VOXEL_HELP = "Point clouds: voxel size (m) of the neighbour graph."
_THREADS_HELP = "Threads to compute with (default: the cores not busy with other programs, at least 1)."


def _profile(up: UpAxis | None, scale: float | None, kind: ScanKind) -> dict:
    """The load options of the shared --up / --scale / --kind, checked."""
    from unscene3d.profile import ProfileRequest

    check_number("--scale", scale, above=0)
    return ProfileRequest(up=None if up is None else up.value, scale=scale, kind=kind.value).load_options()


# Choices from the evaluation's table, so --help lists them.
ProtocolName = Enum("ProtocolName", {name: name for name in PROTOCOLS}, type=str)


def _print_version(asked: bool) -> None:
    if asked:
        from unscene3d import __version__

        typer.echo(f"unscene3d {__version__}")
        raise typer.Exit()


@app.callback()
def _configure(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details."),
    debug: bool = typer.Option(False, "--debug", help="On an unexpected error, print its traceback."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    ctx.obj = {"debug": debug}
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _threads(threads: int | None) -> None:
    """Size the thread pools (``--threads`` or the free cores) before the command imports torch or numba."""
    from unscene3d.threads import use_threads

    check_count("--threads", threads)
    use_threads(threads)


def _scan_paths(scans: list[Path]) -> list[Path]:
    from unscene3d.io.scan import expand_scan_paths

    return expand_scan_paths(scans)


def _shard_option() -> Any:
    """``--shard I/N``, the same on every dataset stage."""
    return typer.Option(None, "--shard", metavar="I/N", help="Do only shard I of N of the scans (every N-th by "
                        "sorted scene name): N jobs of a cluster array, each with its own I and the same "
                        "arguments, together do every scan once, no coordinator needed.")


def _parse_shard(text: str | None) -> Shard | None:
    from unscene3d.io.scan import Shard

    return None if text is None else Shard.parse(text)


def _shard_scans(paths: list[Path], shard: Shard | None) -> list[Path]:
    """The scans this process does: all of ``paths``, or its shard's (said on stderr when it has none)."""
    if shard is None:
        return paths
    chosen = shard.select(paths)
    if not chosen:
        typer.echo(f"shard {shard}: no scans to do (there are {len(paths)} in all)", err=True)
    return chosen


@app.command(cls=Command)
@guarded
def oversegment(
    scans: list[Path] = typer.Argument(..., help=_SCANS_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Output .segs.json (ScanNet format) for one scan; for "
                                "several, a folder of <scan>.<kThresh>.segs.json, named as the ScanNet Segmentator "
                                "does. The scan coloured by segment goes beside each as .segs.ply."),
    variant: Variant = typer.Option(Variant.scannet, help="Edge weights: ScanNet Segmentator or colour-aware."),
    kthresh: float = typer.Option(None, "--kthresh", help="Felzenszwalb k (default: 0.01 scannet, 0.005 unscene3d)."),
    min_verts: int = typer.Option(None, "--min-verts", help="Minimum segment size in vertices (point clouds: voxel "
                                  "points) (default: 20 / 50)."),
    voxel_size: float = typer.Option(None, "--voxel-size", help=_VOXEL_HELP + " [default: 0.02]"),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
    shard: str = _shard_option(),
) -> None:
    """Oversegment scans with Felzenszwalb's algorithm: a mesh exactly like the ScanNet Segmentator, a point
    cloud on its neighbour graph. One segment id per input point (-1 for points without coordinates)."""
    if "numpy" not in sys.modules:
        # No BLAS work here: one OpenBLAS thread spares numpy and scipy (which numba loads) starting and
        # stopping their thread pools, 0.1-0.2 s of a whole run (benchmarks/oversegment_startup.py).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import CheckedScans
    from unscene3d.segment_scans import coloured_path, oversegment_scans, scan_requirements, segs_output_paths

    check_number("--kthresh", kthresh, low=0, high=FLOAT32_MAX)
    check_count("--min-verts", min_verts, low=0)
    check_number("--voxel-size", voxel_size, above=0)
    profile = _profile(up, scale, kind)
    chosen_shard = _parse_shard(shard)
    paths = _scan_paths(scans)
    if len(paths) == 1 and not output.is_dir():
        check_output_file(output, inputs=paths)
        check_output_file(coloured_path(output), inputs=paths)
    elif output.suffix == ".json":
        raise InputError(output, f"several scans need an output folder, not a .json file ({len(paths)} scans)")
    else:
        check_output_dir(output)
    outputs = segs_output_paths(paths, output, variant=variant.value, k_thresh=kthresh)
    output_of = dict(zip(paths, outputs))  # named among all scans, so every shard names its files alike
    paths = _shard_scans(paths, chosen_shard)
    outputs = [output_of[path] for path in paths]
    if not paths:
        return
    checked = CheckedScans(paths, check=scan_requirements(variant.value), load_frames=False, **profile)
    for path in outputs:
        remove_stale_temps(path.parent, target=path)
        remove_stale_temps(path.parent, target=coloured_path(path))
    counts = oversegment_scans(checked, outputs, variant=variant.value, k_thresh=kthresh, min_verts=min_verts,
                               voxel_size=voxel_size)
    if len(outputs) == 1 and chosen_shard is None:
        typer.echo(f"{counts[0]} segments -> {outputs[0]}, coloured by segment: {coloured_path(outputs[0])}")
    else:
        typer.echo(f"{len(outputs)} scans, {sum(counts)} segments -> {output} (coloured by segment: *.segs.ply)")


@app.command(cls=Command)
@guarded
def evaluate(
    pred_dir: Path = typer.Argument(..., help="Predictions in the ScanNet benchmark format."),
    gt: Path = typer.Option(..., "--gt", help="Folder of ground-truth files <scene>.txt (label*1000+instance), or "
                            "scan folders (ScanNet, Pointcept) with their own instance_gt/<scene>.txt, or a folder "
                            "of them."),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures as JSON here (percent)."),
    per_scene: bool = typer.Option(False, "--per-scene", help="Print one row per scene as well."),
    protocol: ProtocolName = typer.Option(
        "scannet", help="Which ground-truth instances count: scannet (18 benchmark classes), class-agnostic "
        "(all but wall, floor, ceiling), all (every instance)."),
    predicted_only: bool = typer.Option(False, "--predicted-only", help="Score only the scenes with predictions "
                                        "(by default a ground-truth scene without predictions counts as all missed)."),
    report: Path = typer.Option(None, "--report", help="Write a report folder: index.html with the per-scene "
                                "table, precision/recall curves (PNG), AP per IoU, and a 3D view when the scans "
                                "are found."),
    scans: list[Path] = typer.Option(None, "--scans", help="--report: the scans (named like the scenes), or folders "
                                     "of them, for the 3D view (default: those recorded by pseudo-mask files in "
                                     "PRED_DIR). Repeat for several."),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
) -> None:
    """Class-agnostic AP / AP50 / AP25 by the ScanNet benchmark procedure, in percent."""
    from unscene3d.evaluation import format_table, match_dirs, summarize
    from unscene3d.io.atomic import atomic_write_text, remove_stale_temps

    profile = _profile(up, scale, kind)
    if json_out is not None:
        check_output_file(json_out)
    if report is not None:
        check_output_dir(report)
    scan_paths = _scan_paths(scans) if scans else []
    matches = match_dirs(pred_dir, gt, protocol=protocol.value, predicted_only=predicted_only)
    result = summarize(matches, protocol.value)
    if report is not None:
        remove_stale_temps(report)
        _write_report(report, matches, pred_dir, gt, scan_paths, protocol.value, profile)
    typer.echo(f"protocol {result.protocol}, figures in percent")
    typer.echo(format_table(result, per_scene=per_scene))
    if json_out is not None:
        remove_stale_temps(json_out.parent, target=json_out)
        atomic_write_text(json_out, json.dumps(result.to_json(), indent=2) + "\n")
    if report is not None:
        typer.echo(f"report -> {report / 'index.html'}")


def _write_report(out_dir: Path, matches: dict, pred_dir: Path, gt: Path, scans: list[Path], protocol: str,
                  scan_options: dict) -> None:
    from unscene3d.evaluation.report import write_report
    from unscene3d.viewer import ScanNotFound, write_page

    view_link, view_note = None, None
    try:
        write_page([pred_dir, *scans], out_dir / "view.html", gt_dir=gt, protocol=protocol, scan_options=scan_options)
        view_link = "view.html"
    except ScanNotFound as error:
        view_note = f"{error.problem} (evaluate --scans)"
    write_report(out_dir, matches, protocol=protocol, sources={"predictions": pred_dir, "ground truth": gt},
                 view_link=view_link, view_note=view_note)


@app.command(cls=Command)
@guarded
def baseline(
    method: Baseline = typer.Argument(..., help="Which learning-free baseline."),
    scans: list[Path] = typer.Argument(..., help=_SCANS_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (ScanNet benchmark format and "
                                "<scene>_instances.ply coloured by instance)."),
    axis_align: bool = typer.Option(False, "--axis-align", help="Apply ScanNet axisAlignment first."),
    kthresh: float = typer.Option(None, "--kthresh", help="felzenszwalb: k (default 0.05)."),
    min_verts: int = typer.Option(None, "--min-verts", help="felzenszwalb: minimum segment size in vertices "
                                  "(point clouds: voxel points) (default 500)."),
    voxel_size: float = typer.Option(None, "--voxel-size", help="Voxel size (m): felzenszwalb on point clouds "
                                     "(default 0.02), hdbscan (default 0.10)."),
    min_cluster_size: int = typer.Option(None, "--min-cluster-size", help="hdbscan: minimum cluster size in voxels "
                                         "(default 20)."),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
    force: bool = typer.Option(False, "--force", help="Redo scans whose predictions already exist."),
    shard: str = _shard_option(),
) -> None:
    """Run a learning-free baseline (segments or HDBSCAN clusters as instances) on scans (meshes or point
    clouds). Masks are written per input point, in file order."""
    from unscene3d.baselines.run import run_baseline
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import scan_names

    check_number("--kthresh", kthresh, low=0, high=FLOAT32_MAX)
    check_count("--min-verts", min_verts, low=0)
    check_number("--voxel-size", voxel_size, above=0)
    check_count("--min-cluster-size", min_cluster_size, low=2)
    profile = _profile(up, scale, kind)
    chosen_shard = _parse_shard(shard)
    check_output_dir(output)
    paths = _scan_paths(scans)
    scan_names(paths)  # among all scans: two shards must not write one file
    paths = _shard_scans(paths, chosen_shard)
    if not paths:
        return
    remove_stale_temps(output)
    written = run_baseline(method.value, paths, output, axis_align=axis_align, k_thresh=kthresh, min_verts=min_verts,
                           voxel_size=voxel_size, min_cluster_size=min_cluster_size, **profile,
                           force=force)
    typer.echo(f"{method.value} instances of {len(written)} scans -> {output}")


@app.command("export-gt", cls=Command)
@guarded
def export_gt(
    scans: list[Path] = typer.Argument(..., help="Scans with annotations: mOSD PCD, S3DIS rooms, Pointcept or "
                                       "ScanNet scene folders, or folders of them."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for <scene>.txt ground truth (for evaluate --gt)."),
) -> None:
    """Write the ground truth that scans carry as benchmark files, one value per input point (label*1000+instance;
    objects of mOSD/S3DIS-clutter are label 39, structure and tables are void)."""
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.benchmark import write_gt_txt
    from unscene3d.io.scan import CheckedScans, scan_names

    check_output_dir(output)
    paths = _scan_paths(scans)
    scan_names(paths)
    checked = CheckedScans(paths, load_frames=False, load_gt=True)
    remove_stale_temps(output)
    written = 0
    for scan, scene in zip(checked.paths, checked):
        if scene.gt is None:
            log.warning("%s: no ground truth in this scan, skipped", scan)
            continue
        write_gt_txt(output / f"{scene.name}.txt", scene.to_input(scene.gt, 0))
        written += 1
    typer.echo(f"ground truth of {written} scans -> {output}")


@app.command(cls=Command)
@guarded
def synthetic(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for <scene>.ply and gt/<scene>.txt."),
    seeds: list[int] = typer.Option([0], "--seed", help="Seed of a room; repeat for several rooms."),
    scanlike: bool = typer.Option(False, "--scanlike", help="Scenes that look like real scans (seen from a "
                                  "simulated scanner: holes, noise, props; rooms, L-shaped rooms, tabletops; meshes "
                                  "or point clouds), as the model of objects can train on."),
    kind: str = typer.Option(None, "--kind", help="With --scanlike: room, l-room or tabletop (default: drawn from "
                             "the seed)."),
    cloud: bool = typer.Option(None, "--cloud/--mesh", help="With --scanlike: point clouds or meshes (default: "
                               "drawn from the seed)."),
) -> None:
    """Write procedural synthetic rooms with ground truth, as inputs for any stage."""
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.benchmark import write_gt_txt
    from unscene3d.io.ply import write_ply
    from unscene3d.progress import progress_log
    from unscene3d.synthetic import make_synthetic_scene, make_training_scene
    from unscene3d.synthetic.scanlike_layout import ROOM_KINDS

    for seed in seeds:
        check_count("--seed", seed, low=0)
    if len(set(seeds)) < len(seeds):
        raise InputError(None, "--seed: each seed names one room; a seed is given twice")
    if not scanlike and (kind is not None or cloud is not None):
        raise InputError(None, "--kind, --cloud and --mesh go with --scanlike")
    if kind is not None and kind not in ROOM_KINDS:
        raise InputError(None, f"--kind must be one of {', '.join(ROOM_KINDS)}, got {kind!r}")
    check_output_dir(output)
    remove_stale_temps(output)
    for seed in progress_log(seeds, "synthetic"):
        scene = make_training_scene(seed, kind, cloud) if scanlike else make_synthetic_scene(seed)
        write_gt_txt(output / "gt" / f"{scene.name}.txt", scene.gt)
        write_ply(output / f"{scene.name}.ply", scene.vertices, scene.faces, scene.colors)
    typer.echo(f"{len(seeds)} synthetic scenes -> {output}")


@app.command(cls=Command)
@guarded
def demo(
    output: Path = typer.Option(Path("demo_out"), "--output", "-o", help="Folder for the demo's results."),
    seed: int = typer.Option(0, help="Seed of the synthetic scene."),
    run: Path = typer.Option(None, "--run", help="A self-training run (`unscene3d train`) whose model also segments "
                                                  "the scene."),
    fit_rooms: int = typer.Option(3, "--fit-rooms", help="Generated rooms `fit` self-trains on (0: skip it, "
                                  "a few seconds instead of about a minute)."),
    rounds: int = typer.Option(2, help="Self-training rounds of the demo's fit."),
) -> None:
    """Run the pipeline on generated synthetic rooms with ground truth (no data needed)."""
    from unscene3d.demo import run_demo
    from unscene3d.io.atomic import remove_stale_temps

    check_count("--seed", seed, low=0)
    check_count("--fit-rooms", fit_rooms, low=0)
    check_count("--rounds", rounds, low=1)
    check_output_dir(output)
    _threads(None)
    remove_stale_temps(output)
    typer.echo(run_demo(output, seed=seed, run=run, fit_rooms=fit_rooms, rounds=rounds))


def _interrupted_training(output: Path) -> None:
    """Ctrl-C during training: say how to continue from the last checkpoint (exit 130)."""
    typer.echo(f"interrupted: run the same command with --resume to continue from the last checkpoint in {output}",
               err=True)
    raise typer.Exit(code=130)


def _check_training_options(
    counts: dict[str, int | None], *, seed: int | None, lr: float | None, device: str | None, output: Path
) -> None:
    for option, value in counts.items():
        check_count(option, value)
    check_count("--seed", seed, low=0)
    check_number("--lr", lr, above=0)
    check_device(device)
    check_output_dir(output)


@app.command(cls=Command)
@guarded
def pretrain(
    scans: list[Path] = typer.Argument(..., help=_SCANS_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: checkpoints, log.csv."),
    preset: str = typer.Option(None, help="'cpu-small' (default) or 'paper'; with --resume the run's own."),
    steps: int = typer.Option(None, help="Total training steps (default: the preset's)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Scans per step and process."),
    lr: float = typer.Option(None, help="Peak learning rate."),
    num_pairs: int = typer.Option(None, "--num-pairs", help="Matched voxel pairs per step."),
    loss: str = typer.Option(None, help="'csc' (spatial-context negatives) or 'pointcontrast'."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", help="Save a checkpoint every N steps."),
    seed: int = typer.Option(None, help="Seed of weights and augmentations."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUTPUT from its latest checkpoint."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
) -> None:
    """Self-supervised pretraining of the 3D backbone (PointContrast / CSC) on unlabeled scans.

    Multi-GPU: torchrun --nproc_per_node=K -m unscene3d pretrain ... (no other change).
    """
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import CheckedScans
    from unscene3d.train.pretrain import preset_config
    from unscene3d.train.pretrain import pretrain as run_pretrain

    counts = {"--steps": steps, "--batch-size": batch_size, "--num-pairs": num_pairs,
              "--checkpoint-every": checkpoint_every}
    _check_training_options(counts, seed=seed, lr=lr, device=device, output=output)
    profile = _profile(up, scale, kind)
    overrides = dict(
        steps=steps, batch_size=batch_size, lr=lr, num_pairs=num_pairs, loss=loss,
        checkpoint_every=checkpoint_every, seed=seed,
    )
    given = preset is not None or any(v is not None for v in overrides.values())
    config = preset_config(preset or "cpu-small", **overrides) if (given or not resume) else None
    scenes = list(CheckedScans(_scan_paths(scans), check=require_voxel_grid, load_frames=False, **profile))
    remove_stale_temps(output)
    try:
        result = run_pretrain(scenes, output, config, resume=resume, device=device)
    except KeyboardInterrupt:
        _interrupted_training(output)
    typer.echo(f"trained to step {result.last_step}; checkpoint -> {result.checkpoint}")


@app.command(cls=Command)
@guarded
def features3d(
    checkpoint: Path = typer.Argument(..., help="Checkpoint folder, its model.safetensors, or a run folder."),
    scans: list[Path] = typer.Argument(..., help=_SCANS_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for <scene>.npy per-vertex features."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
    shard: str = _shard_option(),
    threads: int = typer.Option(None, "--threads", help=_THREADS_HELP),
) -> None:
    """Write per-vertex 3D features (decoder level at stride 2, 96-d) of each scan as <scene>.npy."""
    _threads(threads)
    from unscene3d.features.features3d import extract_features_for_scans, load_backbone
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import CheckedScans, scan_names

    check_device(device)
    profile = _profile(up, scale, kind)
    chosen_shard = _parse_shard(shard)
    check_output_dir(output)
    paths = _scan_paths(scans)
    scan_names(paths)
    paths = _shard_scans(paths, chosen_shard)
    if not paths:
        return
    load_backbone(checkpoint, "cpu")
    CheckedScans(paths, check=require_voxel_grid, keep_vertices=0, load_frames=False, **profile)
    remove_stale_temps(output)
    written = extract_features_for_scans(checkpoint, paths, output, device=device, **profile)
    typer.echo(f"{len(written)} feature files -> {output}")


@app.command("pseudo-masks", cls=Command)
@guarded
def pseudo_masks(
    scans: list[Path] = typer.Argument(..., help=_SCANS_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: benchmark txt files, <scene>.npz and "
                                "<scene>_instances.ply coloured by mask."),
    modality: str = typer.Option("auto", help="Segment features: auto (best available: 2d with --encoder and "
                                 "frames, 3d with --checkpoint or --features3d, else geometric), geometric, "
                                 "handcrafted, 3d, 2d, both."),
    checkpoint: Path = typer.Option(None, help="3d/both: pretrained backbone checkpoint."),
    features3d: Path = typer.Option(None, "--features3d", help="3d/both: read the features `unscene3d features3d` "
                                    "wrote to this folder (<scene>.npy) instead of running a --checkpoint."),
    encoder: str = typer.Option(None, help="2d/both: image encoder, a hub id (DINO ViT) or a local folder."),
    ncut: str = typer.Option("spatial", "--ncut", help="spatial: recursive cuts over touching segments, masks scored "
                             "by objectness; official: the paper's masked NCut on the full cosine graph."),
    structure: bool = typer.Option(True, "--structure/--no-structure", help="Keep floor, walls and ceiling out of "
                                   "the cuts (--ncut official --no-structure is the official algorithm)."),
    source: str = typer.Option("auto", help="model: the shipped model of objects (candidates ranked by a network "
                               "trained on generated scenes); ncut: the normalized cuts of the options above; "
                               "felzenszwalb: coarse Felzenszwalb segments (the paper's Table 8 ablation); auto: ncut "
                               "when an option of the cut is given, else model."),
    ranker: Path = typer.Option(None, "--ranker", help="model: a ranker file (`unscene3d train-ranker`) instead of the "
                                "shipped one."),
    tau: float = typer.Option(None, help="official: affinity threshold (default 0.55 3d, 0.65 both, 0.6 others)."),
    frame_step: int = typer.Option(20, "--frame-step", help="2d/both: use every n-th of the scan's frames."),
    isolate_masked: bool = typer.Option(False, "--isolate-masked", help="official: cut only the segments not yet "
                                        "masked (not the official rule; finds more masks when features are weak)."),
    workers: int = typer.Option(1, help="Scans processed in parallel (processes)."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
    force: bool = typer.Option(False, "--force", help="Redo scans whose pseudo masks already exist."),
    shard: str = _shard_option(),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
    threads: int = typer.Option(None, "--threads", help=_THREADS_HELP),
) -> None:
    """Initial pseudo masks: segment features, scene structure and normalized cuts (UnScene3D stage 1)."""
    _threads(threads)
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import scan_names
    from unscene3d.profile import ProfileRequest
    from unscene3d.pseudo.ncut import NCutConfig
    from unscene3d.pseudo.pipeline import CUTS, MODALITIES, SOURCES, PseudoMaskOptions, run_pseudo_masks

    check_choice("--modality", modality, MODALITIES)
    check_choice("--ncut", ncut, CUTS)
    check_choice("--source", source, SOURCES)
    check_number("--tau", tau, low=0, high=1)
    check_count("--frame-step", frame_step)
    check_count("--workers", workers)
    check_device(device)
    chosen_shard = _parse_shard(shard)
    check_output_dir(output)
    profile = _profile(up, scale, kind)
    options = PseudoMaskOptions(
        ncut=NCutConfig(isolate_masked=isolate_masked),
        modality=modality,
        checkpoint=None if checkpoint is None else str(checkpoint),
        features3d=None if features3d is None else str(features3d),
        encoder=encoder,
        tau=tau,
        device=device,
        frame_step=frame_step,
        cut=ncut,
        structure=structure,
        source=source,
        ranker=None if ranker is None else str(ranker),
        scan=ProfileRequest(**profile),
    )
    if options.resolved_source() == "model":
        from unscene3d.proposals.ranker import load_ranker

        load_ranker(ranker)  # a bad ranker file fails before any work
    paths = _scan_paths(scans)
    scan_names(paths)  # among all scans: two shards must not write one file
    paths = _shard_scans(paths, chosen_shard)
    if not paths:
        return
    check_pseudo_mask_inputs(paths, options)
    remove_stale_temps(output)
    written = run_pseudo_masks(paths, output, options, workers=workers, force=force)
    typer.echo(f"pseudo masks of {len(written)} scans -> {output}")


@app.command(cls=Command)
@guarded
def train(
    pseudo_dir: Path = typer.Argument(..., help="Pseudo-mask folder (<scene>.npz from `unscene3d pseudo-masks`)."),
    scans: list[Path] = typer.Option(None, "--scans", help="Where the scans of those pseudo masks are now (files or "
                                     "folders; matched by scene name; default: the paths recorded by "
                                     "`pseudo-masks`). Repeat the option for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: config.json, round_k/ checkpoints and logs."),
    rounds: int = typer.Option(1, help="Self-training rounds (finished rounds of the run are skipped)."),
    preset: str = typer.Option(None, help="'segment' (default for a new run without a GPU), 'paper' (default "
                               "with one) or 'cpu-small'; a run keeps its own."),
    epochs: int = typer.Option(None, help="Round-1 epochs (default: the preset's)."),
    finetune_epochs: int = typer.Option(None, "--finetune-epochs", help="Epochs of each later round."),
    batch_size: int = typer.Option(None, "--batch-size", help="Scans per step and process."),
    lr: float = typer.Option(None, help="Round-1 peak learning rate (one-cycle)."),
    seed: int = typer.Option(None, help="Seed of weights and augmentations."),
    no_color: bool = typer.Option(False, "--no-color", help="Geometry-only model: ignore vertex colours (for "
                                  "scans without colour, or to segment such scans later)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted round from its latest checkpoint."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
    threads: int = typer.Option(None, "--threads", help=_THREADS_HELP),
) -> None:
    """Self-train the Mask3D-style model on pseudo masks, in rounds with mask densification.

    Multi-GPU: torchrun --nproc_per_node=K -m unscene3d train ... (no other change).
    """
    _threads(threads)
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.run_record import training_record, write_record
    from unscene3d.train.configs import read_run_config
    from unscene3d.train.selftrain import (
        CONFIG_FILE,
        SelfTrainConfig,
        default_preset,
        preset_config,
        self_train,
        without_color,
    )
    from unscene3d.train.selftrain_data import pair_scans

    counts = {"--rounds": rounds, "--epochs": epochs, "--finetune-epochs": finetune_epochs, "--batch-size": batch_size}
    _check_training_options(counts, seed=seed, lr=lr, device=device, output=output)
    check_pseudo_masks(pseudo_dir)
    overrides = dict(epochs=epochs, finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr, seed=seed)
    given = preset is not None or no_color or any(v is not None for v in overrides.values())
    config = preset_config(preset or default_preset(), **overrides) if given else None
    if no_color:
        config = without_color(config)
    scan_paths = _scan_paths(scans) if scans else []
    record = training_record(output, pair_scans(pseudo_dir, scan_paths))
    if config is not None and (output / CONFIG_FILE).is_file():
        read_run_config(output / CONFIG_FILE, SelfTrainConfig, expected=config)  # before run.json is written
    remove_stale_temps(output)
    write_record(output, record)
    try:
        result = self_train(pseudo_dir, scan_paths, output, config, rounds=rounds, resume=resume, device=device,
                            threads=threads)
    except KeyboardInterrupt:
        _interrupted_training(output)
    trained = ", ".join(map(str, result.rounds)) or "none (all finished)"
    typer.echo(f"rounds trained: {trained}; checkpoint -> {result.checkpoint}")


@app.command(cls=Command)
@guarded
def fit(
    scans: list[Path] = typer.Argument(..., help="Scans: mesh or point-cloud files, scan folders, or folders of them."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: pseudo/, round_k/, predictions/round_k/, "
                                "evaluation.json, index.html."),
    rounds: int = typer.Option(4, help="Self-training rounds (finished ones are skipped on a re-run)."),
    ranker_rounds: int = typer.Option(None, "--ranker-rounds", help="Rounds of the model of objects self-trained "
                                      "on all the scans before the self-training rounds (default: 3 with the "
                                      "model's pseudo masks; 0: none)."),
    preset: str = typer.Option(None, help="'segment' (default without a GPU: minutes on a CPU), 'paper' (default "
                               "with a GPU) or 'cpu-small'; a run keeps its own."),
    output_kind: str = typer.Option("union", "--masks", help="Each round's masks: union (pseudo masks + the model's "
                                    "confident new ones) or model (its own predictions)."),
    checkpoint: Path = typer.Option(None, help="Pseudo masks from a pretrained 3D backbone (default: no weights)."),
    encoder: str = typer.Option(None, help="Pseudo masks with 2D features from this image encoder (needs frames)."),
    source: str = typer.Option("auto", help="Pseudo masks from: model (the shipped model of objects), ncut (the "
                               "normalized cut), felzenszwalb; auto: ncut with --checkpoint or --encoder, else model."),
    ranker: Path = typer.Option(None, "--ranker", help="model: a ranker file instead of the shipped one."),
    no_color: bool = typer.Option(False, "--no-color", help="Geometry-only model (for scans without colour)."),
    seed: int = typer.Option(None, help="Seed of weights and augmentations."),
    gt: Path = typer.Option(None, "--gt", help="Ground truth <scene>.txt for scans that carry none (also found in "
                            "gt/ beside a scan file): each round is then evaluated."),
    workers: int = typer.Option(1, help="Scans processed in parallel for the pseudo masks."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
    shard: str = _shard_option(),
    threads: int = typer.Option(None, "--threads", help=_THREADS_HELP),
) -> None:
    """Segment your own scans: pseudo masks, self-training rounds, every round's masks and a page to view.

    Resumable: run the same command again after an interruption and it continues where it stopped. A re-run
    may add scans (the rounds are then trained again on all of them) or ask for other --masks; one that
    would need anything else of the run (its scans, options, code version) stops first, saying what differs.
    With --shard only that shard's pseudo masks are made: run it without --shard afterwards to train.
    """
    _threads(threads)
    from unscene3d.fit import OUTPUTS, FitOptions, format_rounds, format_scans, scene_ground_truth
    from unscene3d.fit import fit as run_fit
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import scan_names
    from unscene3d.profile import ProfileRequest
    from unscene3d.proposals.self_training import SelfTrainingConfig
    from unscene3d.pseudo.pipeline import SOURCES, PseudoMaskOptions
    from unscene3d.train.selftrain import default_preset, preset_config, without_color

    check_choice("--masks", output_kind, OUTPUTS)
    if ranker_rounds is not None and ranker_rounds < 0:
        raise InputError(None, f"--ranker-rounds must be at least 0, got {ranker_rounds}")
    check_choice("--source", source, SOURCES)
    check_count("--workers", workers)
    chosen_shard = _parse_shard(shard)
    _check_training_options({"--rounds": rounds}, seed=seed, lr=None, device=device, output=output)
    if gt is not None and not gt.is_dir():
        raise InputError(gt, "ground-truth folder not found")
    profile = _profile(up, scale, kind)
    config = None
    if preset is not None or no_color or seed is not None:
        config = preset_config(preset or default_preset(), seed=seed)
        if no_color:
            config = without_color(config)
    options = FitOptions(
        rounds=rounds, config=config, output=output_kind, device=device, workers=workers, gt_dir=gt, threads=threads,
        self_training=None if ranker_rounds is None else SelfTrainingConfig(rounds=ranker_rounds),
        pseudo=PseudoMaskOptions(checkpoint=None if checkpoint is None else str(checkpoint), encoder=encoder,
                                 device=device, scan=ProfileRequest(**profile), source=source,
                                 ranker=None if ranker is None else str(ranker)),
    )
    if options.pseudo.resolved_source() == "model":
        from unscene3d.proposals.ranker import load_ranker

        start = load_ranker(ranker)  # a bad ranker file fails before any work
        if options.resolved_self_training().rounds and not start.views:
            raise InputError(start.path, "the ranker has no view rankers, which its self-training needs: retrain it "
                                         "with `unscene3d train-ranker`, or pass --ranker-rounds 0")
    paths = _scan_paths(scans)
    scan_names(paths)  # among all scans: two shards must not write one file
    checked = paths if chosen_shard is None else chosen_shard.select(paths)
    check_pseudo_mask_inputs(checked, options.pseudo, voxel_grid=True,
                             ground_truth=lambda scene: scene_ground_truth(scene, gt))
    remove_stale_temps(output)
    try:
        result = run_fit(paths, output, options, shard=chosen_shard)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: run the same command again to resume ({output} keeps what is done)", err=True)
        raise typer.Exit(code=130) from None
    if chosen_shard is not None:
        typer.echo(f"shard {chosen_shard}: pseudo masks of {len(result.pseudo_masks)} of {len(paths)} scans -> "
                   f"{output / 'pseudo'}; when every shard is done, run the command without --shard to train")
        return
    if result.evaluation:
        typer.echo("AP of the pseudo masks and of each round (percent):\n" + format_rounds(result.evaluation))
        typer.echo("per scan:\n" + format_scans(result.per_scan))
    typer.echo(f"masks of every round in {output / 'predictions'}" + (f"; open {result.page}" if result.page else ""))


@app.command("train-ranker", cls=Command)
@guarded
def train_ranker(
    output: Path = typer.Option(..., "--output", "-o", help="The ranker file to write (safetensors)."),
    scenes: int = typer.Option(None, help="Generated training scenes (default: the shipped ranker's)."),
    validation_scenes: int = typer.Option(None, "--validation-scenes", help="Generated scenes never trained on, "
                                          "for the validation figures."),
    epochs: int = typer.Option(None, help="Epochs per ensemble member."),
    seed: int = typer.Option(None, help="Seed of the networks and of the order of the examples."),
    cache: Path = typer.Option(None, help="Folder for the examples of each scene (default: OUTPUT.examples/); a "
                               "re-run reuses them."),
    workers: int = typer.Option(1, help="Scenes prepared in parallel (processes)."),
    generator: str = typer.Option(None, help="Training scenes: rooms (the default) or scanlike (scenes that look "
                                  "like real scans: `unscene3d synthetic --scanlike`)."),
) -> None:
    """Train the model of objects: a ranker of candidate masks, on generated scenes whose labels come for free.
    With no options it remakes the ranker shipped with the package."""
    from dataclasses import replace

    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.proposals.training import TrainingConfig
    from unscene3d.proposals.training import train_ranker as run_training

    for option, value in (("--scenes", scenes), ("--validation-scenes", validation_scenes), ("--epochs", epochs),
                          ("--workers", workers)):
        check_count(option, value)
    check_count("--seed", seed, low=0)
    from unscene3d.proposals.training import GENERATORS

    if generator is not None and generator not in GENERATORS:
        raise InputError(None, f"--generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
    check_output_file(output)
    overrides = {"scenes": scenes, "validation_scenes": validation_scenes, "epochs": epochs, "seed": seed,
                 "generator": generator}
    config = replace(TrainingConfig(), **{k: v for k, v in overrides.items() if v is not None})
    remove_stale_temps(output.parent, target=output)
    ranker = run_training(output, config, cache=cache, workers=workers)
    figures = ranker.info.get("validation") or {}
    typer.echo(f"ranker -> {output}" + (f"; validation AP / AP50 / AP25 {figures['AP']:.1f} / {figures['AP50']:.1f} / "
                                        f"{figures['AP25']:.1f} on generated scenes never trained on" if figures else ""))


@app.command("tune-ranker", cls=Command)
@guarded
def tune_ranker(
    scans: list[Path] = typer.Argument(..., help="Labelled scans: each with its ground truth (its own, --gt, or "
                                       "gt/<scene>.txt beside it)."),
    output: Path = typer.Option(..., "--output", "-o", help="The tuned ranker file to write (safetensors)."),
    gt: Path = typer.Option(None, "--gt", help="Folder of ground truth <scene>.txt for scans that carry none."),
    ranker: Path = typer.Option(None, "--ranker", help="The ranker to start from (default: the shipped one)."),
    workers: int = typer.Option(1, help="Generated replay scenes prepared in parallel (processes)."),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
) -> None:
    """A few labels: fine-tune the model of objects with the ground truth of some of your scans (with generated
    scenes replayed so it keeps what it learnt); use the file with --ranker in predict and pseudo-masks."""
    from unscene3d.fit import scene_ground_truth
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import load_scan
    from unscene3d.proposals.ranker import load_ranker
    from unscene3d.proposals.tuning import tune_ranker as run_tuning

    check_count("--workers", workers)
    if gt is not None and not gt.is_dir():
        raise InputError(gt, "ground-truth folder not found")
    profile = _profile(up, scale, kind)
    check_output_file(output)
    start = load_ranker(ranker)
    scenes = []
    for path in _scan_paths(scans):
        scene = load_scan(path, load_gt=True, load_frames=False, **profile)
        labels = scene_ground_truth(scene, gt)
        if labels is None:
            raise InputError(path, "no ground truth: pass --gt DIR with <scene>.txt, or put it in gt/ beside the "
                                   "scan (`unscene3d export-gt` writes it for ScanNet folders)")
        scene.gt = scene.from_input(labels)
        scenes.append(scene)
    remove_stale_temps(output.parent, target=output)
    run_tuning(start, scenes, output, workers=workers)
    typer.echo(f"ranker tuned on {len(scenes)} labelled scan(s) -> {output}; use it with --ranker {output}")


@app.command(cls=Command)
@guarded
def predict(
    scans: list[Path] = typer.Argument(..., help="Scans: meshes, point clouds, scan folders, or folders of them. "
                                       "(A self-training run given first is taken as --run.)"),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: benchmark txt, instance ids, coloured PLY."),
    run: Path = typer.Option(None, "--run", help="Segment with a self-training run's model (a run folder: its last "
                             "finished round, a round folder or a checkpoint) instead of the shipped model of objects."),
    ranker: Path = typer.Option(None, "--ranker", help="Without --run: a ranker file (`unscene3d train-ranker`) instead "
                                "of the one shipped with the package."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
    shard: str = _shard_option(),
    threads: int = typer.Option(None, "--threads", help=_THREADS_HELP),
) -> None:
    """Segment scans into object instances: with the shipped model of objects (trained on generated scenes, no
    labels), or with a self-trained run's model. Text outputs have one line per input point, in file order."""
    _threads(threads)
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import CheckedScans, scan_names
    from unscene3d.predict import is_model_path, predict_scans
    from unscene3d.proposals.ranker import load_ranker

    check_device(device)
    profile = _profile(up, scale, kind)
    chosen_shard = _parse_shard(shard)
    check_output_dir(output)
    if run is None and len(scans) > 1 and is_model_path(scans[0]):
        run, scans = scans[0], scans[1:]
    if run is not None and ranker is not None:
        raise InputError(None, "--ranker is for the model of objects; a --run brings its own model")
    if run is None:
        load_ranker(ranker)  # a bad ranker file fails before any work
    paths = _scan_paths(scans)
    scan_names(paths)
    paths = _shard_scans(paths, chosen_shard)
    if not paths:
        return
    CheckedScans(paths, check=require_voxel_grid, keep_vertices=0, load_frames=False, **profile)
    remove_stale_temps(output)
    written = predict_scans(run, paths, output, ranker=ranker, device=device, **profile)
    typer.echo(f"instances of {len(written)} scans -> {output}")


@app.command(cls=Command)
@guarded
def view(
    paths: list[Path] = typer.Argument(..., help="Scans (PLY, ScanNet folders), folders of them, prediction folders, "
                                       "pseudo-mask folders, run folders: everything found is shown."),
    output: Path = typer.Option(Path("view.html"), "--output", "-o", help="The HTML page to write."),
    gt: Path = typer.Option(None, "--gt", help="Folder of ground-truth files <scene>.txt (else those found with "
                            "the scans or in gt/ folders)."),
    protocol: ProtocolName = typer.Option("scannet", help="Which ground-truth instances count for the AP lines."),
    max_points: int = typer.Option(None, "--max-points", help="Points shown per scan; larger scans are subsampled "
                                   "(default 250,000)."),
    title: str = typer.Option(None, help="Page title (default: the scene name or the number of scenes)."),
    layer: str = typer.Option(None, "--layer", help="The layer shown first: its name or the end of it (round_4, "
                              "felzenszwalb, segments, ground truth; default: the last prediction set). The page's "
                              "URL can choose too: index.html#layer=NAME."),
    up: UpAxis = UP_OPTION,
    scale: float = SCALE_OPTION,
    kind: ScanKind = KIND_OPTION,
) -> None:
    """Write one self-contained HTML page (opens offline) showing scans in 3D with switchable layers."""
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.viewer import DEFAULT_MAX_POINTS, write_page

    check_count("--max-points", max_points)
    profile = _profile(up, scale, kind)
    check_output_file(output, inputs=paths)
    remove_stale_temps(output.parent, target=output)
    summary = write_page(paths, output, gt_dir=gt, protocol=protocol.value,
                         max_points=max_points or DEFAULT_MAX_POINTS, title=title, layer=layer,
                         scan_options=profile)
    typer.echo(str(summary))
