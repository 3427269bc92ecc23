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

import typer

from unscene3d.checks import (
    FLOAT32_MAX,
    all_of,
    check_count,
    check_device,
    check_number,
    check_output_dir,
    check_output_file,
    check_pseudo_masks,
    require_frames,
    require_voxel_grid,
)
from unscene3d.cli_guard import guarded
from unscene3d.errors import InputError

app = typer.Typer(
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


@app.callback()
def _configure(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details."),
    debug: bool = typer.Option(False, "--debug", help="On an unexpected error, print its traceback."),
) -> None:
    ctx.obj = {"debug": debug}
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _scan_paths(scans: list[Path]) -> list[Path]:
    from unscene3d.io.scan import expand_scan_paths

    return expand_scan_paths(scans)


@app.command()
@guarded
def oversegment(
    meshes: list[Path] = typer.Argument(..., help="Mesh PLY files or ScanNet scene folders (or folders of them)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .segs.json (ScanNet format) for one mesh; for "
                                "several, a folder of <mesh>.<kThresh>.segs.json, named as the ScanNet Segmentator does."),
    variant: Variant = typer.Option(Variant.scannet, help="Edge weights: ScanNet Segmentator or colour-aware."),
    kthresh: float = typer.Option(None, "--kthresh", help="Felzenszwalb k (default: 0.01 scannet, 0.005 unscene3d)."),
    min_verts: int = typer.Option(None, "--min-verts", help="Minimum segment size (default: 20 / 50)."),
) -> None:
    """Oversegment meshes with Felzenszwalb's algorithm, exactly like the ScanNet Segmentator."""
    if "numpy" not in sys.modules:
        # No BLAS work here: one OpenBLAS thread spares numpy and scipy (which numba loads) starting and
        # stopping their thread pools, 0.1-0.2 s of a whole run (benchmarks/oversegment_startup.py).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import CheckedScans
    from unscene3d.segment_scans import mesh_requirements, oversegment_scans, segs_output_paths

    check_number("--kthresh", kthresh, low=0, high=FLOAT32_MAX)
    check_count("--min-verts", min_verts, low=0)
    scans = _scan_paths(meshes)
    if len(scans) == 1 and not output.is_dir():
        check_output_file(output, inputs=scans)
    elif output.suffix == ".json":
        raise InputError(output, f"several meshes need an output folder, not a .json file ({len(scans)} meshes)")
    else:
        check_output_dir(output)
    outputs = segs_output_paths(scans, output, variant=variant.value, k_thresh=kthresh)
    checked = CheckedScans(scans, check=mesh_requirements(variant.value), load_frames=False)
    for path in outputs:
        remove_stale_temps(path.parent, target=path)
    counts = oversegment_scans(checked, outputs, variant=variant.value, k_thresh=kthresh, min_verts=min_verts)
    if len(outputs) == 1:
        typer.echo(f"{counts[0]} segments -> {outputs[0]}")
    else:
        typer.echo(f"{len(outputs)} meshes, {sum(counts)} segments -> {output}")


@app.command()
@guarded
def evaluate(
    pred_dir: Path = typer.Argument(..., help="Predictions in the ScanNet benchmark format."),
    gt: Path = typer.Option(..., "--gt", help="Folder of ground-truth files <scene>.txt (label*1000+instance)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures as JSON here."),
    per_scene: bool = typer.Option(False, "--per-scene", help="Print one row per scene as well."),
    predicted_only: bool = typer.Option(False, "--predicted-only", help="Score only the scenes with predictions "
                                        "(by default a ground-truth scene without predictions counts as all missed)."),
) -> None:
    """Class-agnostic AP / AP50 / AP25 by the ScanNet benchmark procedure."""
    from unscene3d.evaluation import evaluate_dirs, format_table
    from unscene3d.io.atomic import atomic_write_text, remove_stale_temps

    if json_out is not None:
        check_output_file(json_out)
    result = evaluate_dirs(pred_dir, gt, predicted_only=predicted_only)
    typer.echo(format_table(result, per_scene=per_scene))
    if json_out is not None:
        remove_stale_temps(json_out.parent, target=json_out)
        atomic_write_text(json_out, json.dumps(result.to_json(), indent=2) + "\n")


@app.command()
@guarded
def baseline(
    method: Baseline = typer.Argument(..., help="Which learning-free baseline."),
    scans: list[Path] = typer.Argument(..., help="Scans: PLY files, ScanNet scene folders, or folders of them."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (ScanNet benchmark format)."),
    axis_align: bool = typer.Option(False, "--axis-align", help="Apply ScanNet axisAlignment first."),
    kthresh: float = typer.Option(None, "--kthresh", help="felzenszwalb: k (default 0.05)."),
    min_verts: int = typer.Option(None, "--min-verts", help="felzenszwalb: minimum segment size (default 500)."),
    force: bool = typer.Option(False, "--force", help="Redo scans whose predictions already exist."),
) -> None:
    """Run a learning-free baseline (segments or HDBSCAN clusters as instances) on scans."""
    from unscene3d.baselines.run import run_baseline
    from unscene3d.io.atomic import remove_stale_temps

    check_number("--kthresh", kthresh, low=0, high=FLOAT32_MAX)
    check_count("--min-verts", min_verts, low=0)
    check_output_dir(output)
    remove_stale_temps(output)
    written = run_baseline(method.value, scans, output, axis_align=axis_align, k_thresh=kthresh,
                           min_verts=min_verts, force=force)
    typer.echo(f"{method.value} instances of {len(written)} scans -> {output}")


@app.command()
@guarded
def synthetic(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for <scene>.ply and gt/<scene>.txt."),
    seeds: list[int] = typer.Option([0], "--seed", help="Seed of a room; repeat for several rooms."),
) -> None:
    """Write procedural synthetic rooms with ground truth, as inputs for any stage."""
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.benchmark import write_gt_txt
    from unscene3d.io.ply import write_ply
    from unscene3d.progress import progress_log
    from unscene3d.synthetic import make_synthetic_scene

    for seed in seeds:
        check_count("--seed", seed, low=0)
    if len(set(seeds)) < len(seeds):
        raise InputError(None, "--seed: each seed names one room; a seed is given twice")
    check_output_dir(output)
    remove_stale_temps(output)
    for seed in progress_log(seeds, "synthetic"):
        scene = make_synthetic_scene(seed)
        write_gt_txt(output / "gt" / f"{scene.name}.txt", scene.gt)
        write_ply(output / f"{scene.name}.ply", scene.vertices, scene.faces, scene.colors)
    typer.echo(f"{len(seeds)} synthetic scenes -> {output}")


@app.command()
@guarded
def demo(
    output: Path = typer.Option(Path("demo_out"), "--output", "-o", help="Folder for the demo's results."),
    seed: int = typer.Option(0, help="Seed of the synthetic scene."),
    run: Path = typer.Option(None, "--run", help="A self-training run (`unscene3d train`) whose model also segments "
                                                  "the scene."),
) -> None:
    """Run the pipeline on a generated synthetic room with ground truth (no data needed)."""
    from unscene3d.demo import run_demo
    from unscene3d.io.atomic import remove_stale_temps

    check_count("--seed", seed, low=0)
    check_output_dir(output)
    remove_stale_temps(output)
    typer.echo(run_demo(output, seed=seed, run=run))


def _check_training_options(
    counts: dict[str, int | None], *, seed: int | None, lr: float | None, device: str | None, output: Path
) -> None:
    for option, value in counts.items():
        check_count(option, value)
    check_count("--seed", seed, low=0)
    check_number("--lr", lr, above=0)
    check_device(device)
    check_output_dir(output)


@app.command()
@guarded
def pretrain(
    scans: list[Path] = typer.Argument(..., help="Scans: PLY files, ScanNet scene folders, or folders of them."),
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
    overrides = dict(
        steps=steps, batch_size=batch_size, lr=lr, num_pairs=num_pairs, loss=loss,
        checkpoint_every=checkpoint_every, seed=seed,
    )
    given = preset is not None or any(v is not None for v in overrides.values())
    config = preset_config(preset or "cpu-small", **overrides) if (given or not resume) else None
    scenes = list(CheckedScans(_scan_paths(scans), check=require_voxel_grid, load_frames=False))
    remove_stale_temps(output)
    result = run_pretrain(scenes, output, config, resume=resume, device=device)
    typer.echo(f"trained to step {result.last_step}; checkpoint -> {result.checkpoint}")


@app.command()
@guarded
def features3d(
    checkpoint: Path = typer.Argument(..., help="Checkpoint folder, its model.safetensors, or a run folder."),
    scans: list[Path] = typer.Argument(..., help="Scans: PLY files, ScanNet scene folders, or folders of them."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for <scene>.npy per-vertex features."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
) -> None:
    """Write per-vertex 3D features (decoder level at stride 2, 96-d) of each scan as <scene>.npy."""
    from unscene3d.features.features3d import extract_features_for_scans, load_backbone
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import CheckedScans, scan_names

    check_device(device)
    check_output_dir(output)
    paths = _scan_paths(scans)
    scan_names(paths)
    load_backbone(checkpoint, "cpu")
    CheckedScans(paths, check=require_voxel_grid, keep_vertices=0, load_frames=False)
    remove_stale_temps(output)
    written = extract_features_for_scans(checkpoint, paths, output, device=device)
    typer.echo(f"{len(written)} feature files -> {output}")


@app.command("pseudo-masks")
@guarded
def pseudo_masks(
    scans: list[Path] = typer.Argument(..., help="Scans: PLY files, ScanNet scene folders, or folders of them."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: benchmark txt files and <scene>.npz."),
    modality: str = typer.Option("handcrafted", help="Segment features: handcrafted, 3d, 2d or both."),
    checkpoint: Path = typer.Option(None, help="3d/both: pretrained backbone checkpoint."),
    encoder: str = typer.Option(None, help="2d/both: image encoder, a hub id (DINO ViT) or a local folder."),
    tau: float = typer.Option(None, help="Affinity threshold (default 0.55 3d, 0.65 both, 0.6 2d/handcrafted)."),
    frame_step: int = typer.Option(20, "--frame-step", help="2d/both: use every n-th of the scan's frames."),
    isolate_masked: bool = typer.Option(False, "--isolate-masked", help="Cut only the segments not yet masked "
                                        "(not the official rule; finds more masks when features are weak)."),
    workers: int = typer.Option(1, help="Scans processed in parallel (processes)."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
    force: bool = typer.Option(False, "--force", help="Redo scans whose pseudo masks already exist."),
) -> None:
    """Initial pseudo masks by masked normalized cuts over segment features (UnScene3D stage 1)."""
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import CheckedScans, scan_names
    from unscene3d.pseudo.ncut import NCutConfig
    from unscene3d.pseudo.pipeline import PseudoMaskOptions, run_pseudo_masks

    check_number("--tau", tau, low=0, high=1)
    check_count("--frame-step", frame_step)
    check_count("--workers", workers)
    check_device(device)
    check_output_dir(output)
    options = PseudoMaskOptions(
        ncut=NCutConfig(isolate_masked=isolate_masked),
        modality=modality,
        checkpoint=None if checkpoint is None else str(checkpoint),
        encoder=encoder,
        tau=tau,
        device=device,
        frame_step=frame_step,
    )
    paths = _scan_paths(scans)
    scan_names(paths)
    if checkpoint is not None and modality in ("3d", "both"):
        from unscene3d.features.features3d import load_backbone

        load_backbone(checkpoint, "cpu")
    needs_frames = modality in ("2d", "both")
    from unscene3d.segment_scans import require_mesh

    # Until point clouds get their own oversegmentation, the segments need a mesh.
    requirements = [require_mesh]
    if needs_frames:
        requirements.append(require_frames)
    if modality in ("3d", "both"):
        requirements.append(require_voxel_grid)
    CheckedScans(paths, check=all_of(*requirements), keep_vertices=0, load_frames=needs_frames)
    remove_stale_temps(output)
    written = run_pseudo_masks(paths, output, options, workers=workers, force=force)
    typer.echo(f"pseudo masks of {len(written)} scans -> {output}")


@app.command()
@guarded
def train(
    pseudo_dir: Path = typer.Argument(..., help="Pseudo-mask folder (<scene>.npz from `unscene3d pseudo-masks`)."),
    scans: list[Path] = typer.Option(None, "--scans", help="Where the scans of those pseudo masks are now (files or "
                                     "folders; matched by scene name; default: the paths recorded by "
                                     "`pseudo-masks`). Repeat the option for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: config.json, round_k/ checkpoints and logs."),
    rounds: int = typer.Option(1, help="Self-training rounds (finished rounds of the run are skipped)."),
    preset: str = typer.Option(None, help="'cpu-small' (default for a new run) or 'paper'; a run keeps its own."),
    epochs: int = typer.Option(None, help="Round-1 epochs (default: the preset's)."),
    finetune_epochs: int = typer.Option(None, "--finetune-epochs", help="Epochs of each later round."),
    batch_size: int = typer.Option(None, "--batch-size", help="Scans per step and process."),
    lr: float = typer.Option(None, help="Round-1 peak learning rate (one-cycle)."),
    seed: int = typer.Option(None, help="Seed of weights and augmentations."),
    no_color: bool = typer.Option(False, "--no-color", help="Geometry-only model: ignore vertex colours (for "
                                  "scans without colour, or to segment such scans later)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted round from its latest checkpoint."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
) -> None:
    """Self-train the Mask3D-style model on pseudo masks, in rounds with mask densification.

    Multi-GPU: torchrun --nproc_per_node=K -m unscene3d train ... (no other change).
    """
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.train.selftrain import preset_config, self_train, without_color

    counts = {"--rounds": rounds, "--epochs": epochs, "--finetune-epochs": finetune_epochs, "--batch-size": batch_size}
    _check_training_options(counts, seed=seed, lr=lr, device=device, output=output)
    check_pseudo_masks(pseudo_dir)
    overrides = dict(epochs=epochs, finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr, seed=seed)
    given = preset is not None or no_color or any(v is not None for v in overrides.values())
    config = preset_config(preset or "cpu-small", **overrides) if given else None
    if no_color:
        config = without_color(config)
    scan_paths = _scan_paths(scans) if scans else []
    remove_stale_temps(output)
    result = self_train(pseudo_dir, scan_paths, output, config, rounds=rounds, resume=resume, device=device)
    trained = ", ".join(map(str, result.rounds)) or "none (all finished)"
    typer.echo(f"rounds trained: {trained}; checkpoint -> {result.checkpoint}")


@app.command()
@guarded
def predict(
    run: Path = typer.Argument(..., help="Self-training run folder (its last finished round), round folder or checkpoint."),
    scans: list[Path] = typer.Argument(..., help="Scans: PLY meshes, ScanNet scene folders, or folders of them."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: benchmark txt, instance ids, coloured PLY."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1 (default: GPU when available)."),
) -> None:
    """Segment new scans into instances with a self-trained model (colour optional, no frames needed)."""
    from unscene3d.io.atomic import remove_stale_temps
    from unscene3d.io.scan import CheckedScans, scan_names
    from unscene3d.predict import predict_scans

    check_device(device)
    check_output_dir(output)
    paths = _scan_paths(scans)
    from unscene3d.segment_scans import require_mesh

    scan_names(paths)
    # Masks are voted over segments, which need a mesh until point clouds get their own oversegmentation.
    CheckedScans(paths, check=all_of(require_mesh, require_voxel_grid), keep_vertices=0, load_frames=False)
    remove_stale_temps(output)
    written = predict_scans(run, paths, output, device=device)
    typer.echo(f"instances of {len(written)} scans -> {output}")
