"""Self-training of the Mask3D-style model on pseudo masks, in rounds (UnScene3D stage 2).

Run folder layout::

    RUN_DIR/config.json                 the run's SelfTrainConfig (a re-run must match it)
    RUN_DIR/round_1/checkpoints/...     safetensors checkpoints (see unscene3d.model.checkpoint)
    RUN_DIR/round_1/checkpoint          link to the round's latest checkpoint
    RUN_DIR/round_1/log.csv             one row per step
    RUN_DIR/round_1/done.json           written last: the round is finished (a re-run skips it)
    RUN_DIR/round_2/added/<scene>.npz   masks added by densification before round 2 (over segments;
                                        ``added``, ``source`` query rank, ``scores``)
    RUN_DIR/round_2/added/<scene>.txt   the same masks in the benchmark format, for viewing / evaluation

Round 1 trains from scratch on the initial pseudo masks (OneCycle schedule over ``epochs``). Round k > 1
loads round k-1's final weights, predicts every training scan, densifies (:mod:`unscene3d.train.densify`:
score >= 0.1, NMS at 0.66, up to 5 masks per scan each more than half uncovered, uncovered part only),
and fine-tunes on initial + added masks for ``finetune_epochs`` at ``finetune_lr``. The added masks are
not carried over from round to round: each round recomputes them against the initial pseudo masks with
the newest model (which has learned the earlier additions and so proposes them again).

DropLoss (``tau_drop``) is on by default. It only switches on after ``drop_loss_warmup`` (a fraction of
round 1's steps): a freshly initialised query matched to a target it does not overlap at all would
otherwise have its mask loss dropped for ever, so the model could never learn that target (empty
predictions are never dropped either: :mod:`unscene3d.model.losses`). Fine-tuning rounds start from a
trained model and use DropLoss from their first step.

Learning rate: a one-cycle schedule (as ``torch.optim.lr_scheduler.OneCycleLR`` with cosine annealing:
from lr/25 up to lr over the first 30% of steps, then down to lr/25e4), written as a pure function of
the step so a resumed run continues exactly; AdamW's betas stay fixed (no momentum cycling).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unscene3d.errors import InputError
from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_output, atomic_write_text
from unscene3d.io.benchmark import export_predictions
from unscene3d.model.backbone import BackboneConfig
from unscene3d.model.checkpoint import latest_checkpoint, load_checkpoint, load_model_state
from unscene3d.model.decoder import DecoderConfig
from unscene3d.model.losses import LossConfig, set_criterion
from unscene3d.model.mask3d import Mask3D, Mask3DConfig, build_mask3d, predict_scene
from unscene3d.model.postprocess import PostprocessConfig
from unscene3d.model.segment_model import (
    SegmentModel,
    SegmentModelConfig,
    TokenAugment,
    build_segment_model,
    predict_segments,
)
from unscene3d.pseudo.graph import GraphConfig
from unscene3d.train.augment import AugmentConfig
from unscene3d.train.configs import checkpoint_config, read_run_config, write_config
from unscene3d.train.densify import DensifyConfig, densify_scan
from unscene3d.train.distributed import DistributedContext, barrier, distributed, mean_over_ranks
from unscene3d.train.loop import LoopPlan, StepOutput, TrainLoop
from unscene3d.train.selftrain_data import (
    SelfTrainScan,
    load_training_scans,
    make_step_batch,
)

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "unscene3d-mask3d"
CONFIG_FILE = "config.json"
DONE_FILE = "done.json"
ADDED_FOLDER = "added"
LOSS_TERMS = ("loss", "loss_ce", "loss_bce", "loss_dice", "drop_kept", "drop_dropped")
# log.csv: column -> format (see unscene3d.train.loop.LoopPlan); the DropLoss counts are averaged over ranks
LOG_COLUMNS = {"step": "d", "loss": ".6f", "loss_ce": ".6f", "loss_bce": ".6f", "loss_dice": ".6f", "drop_kept": "d",
               "drop_dropped": "d", "targets": "d", "lr": ".6g", "step_seconds": ".3f", "elapsed_seconds": ".1f"}


@dataclass(frozen=True)
class SelfTrainConfig:
    """Everything that defines a self-training run (saved in ``config.json`` and every checkpoint)."""

    preset: str = "cpu-small"
    model: Mask3DConfig | SegmentModelConfig = field(default_factory=Mask3DConfig)
    augment: AugmentConfig | TokenAugment = field(
        default_factory=lambda: AugmentConfig(color_shift=0.05, color_contrast=0.1))
    loss: LossConfig = field(default_factory=LossConfig)
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    epochs: int = 600  # round 1
    finetune_epochs: int = 60  # each later round
    # Round lengths in steps instead of epochs (the segment model learns in a fixed number of steps
    # whether it sees one scan or forty); None: epochs.
    steps: int | None = None
    finetune_steps: int | None = None
    batch_size: int = 8  # scans per step and process
    lr: float = 1e-4
    finetune_lr: float = 2e-5
    weight_decay: float = 1e-4
    pct_start: float = 0.3  # one-cycle: fraction of steps spent warming up
    # Round 1: fraction of steps before DropLoss switches on. Measured on tiny runs (before empty masks
    # were exempt): switched on after 10% of 20 steps, the masks had collapsed to all-negative by then,
    # every pair was dropped and the mask losses never came back; the one-cycle warm-up (30%) gives the
    # masks time to form.
    drop_loss_warmup: float = 0.3
    min_target_points: int = 20  # a target cut by a crop to fewer vertices is not learned in that step
    checkpoint_every: int = 500
    # Also a checkpoint after this much training time, so that an interruption loses at most this much
    # whatever a step takes under the machine's load.
    checkpoint_minutes: float = 2.0
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    amp: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "finetune_epochs", "batch_size", "checkpoint_every", "log_every", "steps",
                     "finetune_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(None, f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.checkpoint_minutes > 0:
            raise InputError(None, f"checkpoint_minutes must be above 0, got {self.checkpoint_minutes}")
        if not 0.0 <= self.drop_loss_warmup <= 1.0 or not 0.0 < self.pct_start < 1.0:
            raise InputError(None, "drop_loss_warmup must be in [0, 1] and pct_start in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["model"] = self.model.to_dict()
        for name in ("augment", "loss", "densify", "postprocess"):
            data[name] = dataclasses.asdict(getattr(self, name))
        return json.loads(json.dumps(data))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelfTrainConfig:
        try:
            values = dict(data)
            if values["model"].get("kind") == "segment":
                values["model"] = SegmentModelConfig.from_dict(values["model"])
                values["augment"] = TokenAugment(**{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in values["augment"].items()})
            else:
                values["model"] = Mask3DConfig.from_dict(values["model"])
                values["augment"] = AugmentConfig.from_dict(values["augment"])
            values["loss"] = LossConfig(**values["loss"])
            values["densify"] = DensifyConfig(**values["densify"])
            values["postprocess"] = PostprocessConfig(**values["postprocess"])
            return cls(**values)
        except (KeyError, TypeError) as error:
            raise InputError(None, f"not a self-training configuration: {error}") from None


def preset_config(name: str, **overrides: Any) -> SelfTrainConfig:
    """``paper``: Res16UNet34C + the Mask3D decoder of DESIGN.md, 600 epochs at batch 8, fine-tuning
    rounds of 60 epochs at a fifth of the learning rate, whole scans.

    ``segment`` (the default without a GPU: :func:`default_preset`): the segment-token model
    (:mod:`unscene3d.model.segment_model`), whole scans augmented at the segment level, 60 queries,
    masks de-duplicated by IoU NMS at 0.5; round 1 is 1,000 steps of 4 scans (about 0.3 s a step on one
    CPU core), later rounds 300 steps at a fifth of the learning rate, whatever the number of scans.

    ``cpu-small``: one residual block per stage at half the paper's widths (1.5 s per step of two 3 m
    crops on 2 cores, against 3 s at full width), instance norm (batch-norm running
    statistics are unreliable after a few hundred CPU steps), a 128-wide decoder with 2 passes and 50
    queries, fewer sampled keys, 3 m crops, 250 epochs then 50 per later round at lr 1e-3 / 2e-4: on four
    scans, rounds 1 + 2 are 600 steps, under 30 minutes on 2 cores. (150 epochs were too few: the overfit
    check needs about 250 whole-scan steps to fit a single room; see benchmarks/overfit_synthetic.py.)
    """
    if name == "paper":
        config = SelfTrainConfig(preset="paper")
    elif name == "segment":
        config = SelfTrainConfig(
            preset="segment",
            model=SegmentModelConfig(),
            augment=TokenAugment(),
            postprocess=PostprocessConfig(nms_iou=0.5),
            densify=DensifyConfig(recut_masks=5),
            loss=LossConfig(ignore_novel=True),
            steps=1000, finetune_steps=300, batch_size=4, lr=1e-3, finetune_lr=2e-4,
            checkpoint_every=200, log_every=50, amp=False,
        )
    elif name == "cpu-small":
        backbone = BackboneConfig(planes=(16, 32, 64, 128, 128, 64, 48, 48), layers=(1,) * 8, stem_kernel=3,
                                  norm="instance")
        decoder = DecoderConfig(level_channels=(128, 64, 48, 48), num_queries=50, num_passes=2, ffn_dim=512,
                                sample_sizes=(100, 400, 1600, 3200),
                                eval_sample_sizes=(400, 1600, 6400, 12800))
        config = SelfTrainConfig(
            preset="cpu-small",
            model=Mask3DConfig(backbone, decoder),
            augment=AugmentConfig(crop_size=3.0, min_crop_points=2000, color_shift=0.05, color_contrast=0.1,
                                  elastic=((0.2, 0.4),)),
            epochs=250, finetune_epochs=50, batch_size=2, lr=1e-3, finetune_lr=2e-4,
            checkpoint_every=50, log_every=10,
        )
    else:
        raise InputError(None, f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


PRESETS = ("segment", "cpu-small", "paper")


def default_preset() -> str:
    """``paper`` when a CUDA GPU is present, else ``segment`` (trains in minutes on a CPU)."""
    return "paper" if torch.cuda.is_available() else "segment"


def without_color(config: SelfTrainConfig) -> SelfTrainConfig:
    """The same run for a geometry-only model (occupancy input channel instead of colour; for the segment
    model, tokens without their colour columns)."""
    if isinstance(config.model, SegmentModelConfig):
        return dataclasses.replace(config, model=dataclasses.replace(config.model, use_color=False))
    backbone = dataclasses.replace(config.model.backbone, use_color=False)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, backbone=backbone))


def model_uses_color(config: SelfTrainConfig) -> bool:
    model = config.model
    return model.use_color if isinstance(model, SegmentModelConfig) else model.backbone.use_color


def one_cycle_lr(step: int, total_steps: int, max_lr: float, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4) -> float:
    """The learning rate of ``OneCycleLR`` (cosine annealing) at ``step`` (0-based) of ``total_steps``."""
    initial, final = max_lr / div_factor, max_lr / div_factor / final_div_factor
    warmup = max(float(pct_start * total_steps) - 1.0, 1.0)
    position = float(step)
    if position <= warmup:
        start, end, fraction = initial, max_lr, position / warmup
    else:
        start, end = max_lr, final
        fraction = min((position - warmup) / max(total_steps - 1.0 - warmup, 1.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * fraction))


def steps_per_epoch(num_scans: int, config: SelfTrainConfig, world_size: int = 1) -> int:
    return max(1, math.ceil(num_scans / (config.batch_size * world_size)))


def round_steps(round_index: int, num_scans: int, config: SelfTrainConfig, world_size: int = 1) -> int:
    steps = config.steps if round_index == 1 else config.finetune_steps
    if steps is not None:
        return steps
    epochs = config.epochs if round_index == 1 else config.finetune_epochs
    return epochs * steps_per_epoch(num_scans, config, world_size)


def round_dir(run_dir: str | Path, round_index: int) -> Path:
    return Path(run_dir) / f"round_{round_index}"


def finished_rounds(run_dir: str | Path) -> list[int]:
    """The rounds of a run that finished (have ``done.json``), ascending."""
    found = []
    for folder in Path(run_dir).glob("round_*"):
        suffix = folder.name.removeprefix("round_")
        if suffix.isdigit() and (folder / DONE_FILE).is_file():
            found.append(int(suffix))
    return sorted(found)


def build_model(config: SelfTrainConfig, *, seed: int | None = None) -> Mask3D | SegmentModel:
    """A freshly initialised model of the run's kind (deterministic when ``seed`` is given)."""
    if isinstance(config.model, SegmentModelConfig):
        return build_segment_model(config.model, seed=seed)
    return build_mask3d(config.model, seed=seed)


def predict_training_scan(model: Mask3D | SegmentModel, scan: SelfTrainScan, config: SelfTrainConfig) -> Instances:
    """Scored masks over a training scan's vertices, on its pseudo-mask segments."""
    if isinstance(model, SegmentModel):
        return predict_segments(model, scan.tokens, scan.segments, config.postprocess)
    return predict_scene(model, scan.scene, scan.segments, config.postprocess)


def load_model(path: str | Path, device: str | torch.device | None = None) -> tuple[Mask3D | SegmentModel, SelfTrainConfig]:
    """The model of a self-training checkpoint (a checkpoint folder, its model.safetensors, a round
    folder, or a run folder: its last finished round), in eval mode.

    Raises:
        InputError: not a self-training checkpoint (e.g. a pretraining one), or weights that do not fit
            the configuration stored with them.
    """
    from unscene3d.model.sparse_backend import resolve_device

    path = Path(path)
    if path.is_dir() and not (path / "checkpoint").exists() and not (path / "state.json").exists():
        rounds = finished_rounds(path)
        if not rounds:
            raise InputError(path, "not a self-training run: no finished round_k/ with a checkpoint")
        path = round_dir(path, rounds[-1])
    checkpoint = load_checkpoint(path)
    if checkpoint.state.get("kind") != CHECKPOINT_KIND or "model" not in checkpoint.state:
        raise InputError(checkpoint.folder, "not a self-training (Mask3D) checkpoint; a backbone-pretraining "
                                            "checkpoint cannot segment scans")
    config = checkpoint_config(checkpoint, SelfTrainConfig)
    model = build_model(config)
    load_model_state(model, checkpoint.model, checkpoint.folder)
    return model.to(resolve_device(device)).eval(), config


# ----------------------------------------------------------------------------------------------- training

@dataclass
class RoundResult:
    round_index: int
    last_step: int
    losses: list[float]
    checkpoint: Path | None


def train_round(
    scans: Sequence[SelfTrainScan],
    folder: Path,
    config: SelfTrainConfig,
    round_index: int,
    context: DistributedContext,
    *,
    init_from: Path | None = None,
    resume: bool = False,
    max_steps: int | None = None,
) -> RoundResult:
    """One round of training into ``folder`` (checkpoints, log.csv); ``init_from`` = previous round's
    checkpoint (weights only). ``max_steps`` stops this call early (the schedule is unchanged)."""
    total_steps = round_steps(round_index, len(scans), config, context.world_size)
    max_lr = config.lr if round_index == 1 else config.finetune_lr
    drop_after = int(config.drop_loss_warmup * total_steps) if round_index == 1 else 0

    model = build_model(config, seed=config.seed + round_index)
    optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=config.weight_decay)
    # A step whose scans have no targets leaves the mask head without gradient.
    loop = TrainLoop(model, optimizer, context, amp=config.amp, find_unused_parameters=True)
    existing = latest_checkpoint(folder)
    if existing is not None:
        if not resume:
            raise InputError(folder, f"round {round_index} was interrupted: pass --resume to continue it")
        checkpoint = load_checkpoint(existing, with_optimizer=True)
        checkpoint_config(checkpoint, SelfTrainConfig, expected=config)
        loop.restore(checkpoint)
        log.info("round %d: resuming from step %d", round_index, loop.start_step)
    elif init_from is not None:
        previous = load_checkpoint(init_from)
        load_model_state(model, previous.model, previous.folder)
    if context.is_main:
        log.info("round %d: %d scans, preset %s, %d steps (batch %d x %d rank(s)), lr %.3g, device %s%s",
                 round_index, len(scans), config.preset, total_steps, config.batch_size, context.world_size,
                 max_lr, context.device, ", AMP" if loop.use_amp else "")

    def step_fn(step: int, train_model: torch.nn.Module) -> StepOutput:
        rng = np.random.default_rng([config.seed, round_index, step, context.rank])
        batch = make_step_batch(scans, config.batch_size, config.augment, config.model,
                                config.min_target_points, rng)
        targets = [t.to(context.device) for t in batch.targets]
        num_masks = mean_over_ranks(torch.tensor(float(batch.num_targets)), context).item()
        loss_config = dataclasses.replace(config.loss, drop_loss=config.loss.drop_loss and step >= drop_after)
        with loop.autocast():
            output = train_model(batch.scans)
        loss, terms = set_criterion([_float(p) for p in output.predictions], targets, loss_config, max(num_masks, 1.0))
        return StepOutput(loss, {name: terms[name] for name in LOSS_TERMS}, {"targets": batch.num_targets})

    is_segment = isinstance(config.model, SegmentModelConfig)
    plan = LoopPlan(
        folder=folder, total_steps=total_steps,
        learning_rate=lambda step: one_cycle_lr(step, total_steps, max_lr, config.pct_start),
        columns=LOG_COLUMNS,
        progress=f"round {round_index} " + "step {step}/{total} loss {loss:.4f} (ce {loss_ce:.3f} bce {loss_bce:.3f} "
                                           "dice {loss_dice:.3f}) lr {lr:.3g}",
        log_every=config.log_every, checkpoint_every=config.checkpoint_every, keep_checkpoints=config.keep_checkpoints,
        checkpoint_minutes=config.checkpoint_minutes,
        checkpoint_state={
            "kind": CHECKPOINT_KIND,
            # the segment model has no voxel backbone (a backbone reader then refuses the checkpoint)
            "backbone": None if is_segment else config.model.backbone.to_dict(),
            "model": config.model.to_dict(),
            "train": config.to_dict(),
            "round": round_index,
            "scans": [scan.name for scan in scans],
        },
    )
    result = loop.run(step_fn, plan, max_steps)
    return RoundResult(round_index, result.last_step, result.losses, result.checkpoint)


def _float(prediction: Any) -> Any:
    """Losses in float32 whatever autocast produced (the Hungarian costs and BCE need the precision)."""
    return dataclasses.replace(prediction, class_logits=prediction.class_logits.float(),
                               mask_logits=[m.float() for m in prediction.mask_logits])


# ---------------------------------------------------------------------------------------------- densify

# The re-cut's graph: learned features compared by cosine, sigma 4x their median distance over edges, as
# the no-weights cut uses colour (docs/benchmarks.md, "Self-training").
RECUT_GRAPH = GraphConfig(feature_scale=4.0, feature_distance="cosine", feature_source="features")


def recut_masks(model: SegmentModel, scan: SelfTrainScan) -> Instances:
    """The spatial cut of the pseudo-mask stage run again on the model's learned segment features: masks over
    the segments scored by objectness, floor, walls and ceiling left out."""
    from unscene3d.pseudo.cuts import CutConfig
    from unscene3d.pseudo.pipeline import spatial_cut
    from unscene3d.segments import describe_segments

    segments = describe_segments(scan.scene, scan.segments, scan.num_segments)
    return spatial_cut(segments, model.segment_features(scan.tokens), RECUT_GRAPH, CutConfig())


def densify_training_scan(model: Mask3D | SegmentModel, scan: SelfTrainScan, config: SelfTrainConfig) -> Instances:
    """The masks a round adds to a training scan (over its segments): the model's confident new predictions
    (:func:`unscene3d.train.densify.densify_scan`), then, for the segment model with
    ``densify.recut_masks``, masks of the re-cut on its learned features (:func:`recut_masks`), each more
    than half new and only its new part; the re-cut's have ``source`` -1 and scores below the model's."""
    prediction = predict_training_scan(model, scan, config)
    sizes = np.bincount(scan.segments, minlength=scan.num_segments)
    vertex_pseudo = scan.pseudo_masks[:, scan.segments]
    result = densify_scan(vertex_pseudo, prediction, config.densify)
    # Predictions are voted per segment, so an added part is a union of whole segments.
    first_vertex = np.zeros(scan.num_segments, dtype=np.int64)
    first_vertex[scan.segments[::-1]] = np.arange(len(scan.segments))[::-1]
    added, source, scores = list(result.masks[:, first_vertex]), list(result.source), list(result.scores)
    if isinstance(model, SegmentModel) and config.densify.recut_masks:
        covered = scan.pseudo_masks.any(axis=0) | np.any(added, axis=0)
        floor = min(scores, default=config.densify.min_score)
        recut = recut_masks(model, scan)
        count = 0
        for mask, value in zip(recut.masks, recut.scores / max(float(recut.scores.max(initial=0.0)), 1e-12)):
            new = mask & ~covered
            if count == config.densify.recut_masks:
                break
            if sizes[new].sum() > config.densify.min_uncovered_fraction * sizes[mask].sum():
                added.append(new)
                source.append(-1)
                scores.append(floor * value * (1 - 1e-6))
                covered |= new
                count += 1
    return Instances(np.stack(added) if added else np.zeros((0, scan.num_segments), dtype=bool), scores,
                     source=np.asarray(source, dtype=np.int64))


def densify_scans(model: Mask3D | SegmentModel, scans: Sequence[SelfTrainScan], config: SelfTrainConfig, out_dir: Path) -> int:
    """Add every training scan's new masks (:func:`densify_training_scan`; ``scan.added_masks``, over
    segments) and write them to ``out_dir`` (``<scene>.npz`` + benchmark txt). Returns the number added."""
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    for scan in scans:
        result = densify_training_scan(model, scan, config)
        scan.added_masks = result.masks
        total += len(result)
        log.info("%s: %d masks added (%d from the re-cut)", scan.name, len(result), int((result.source < 0).sum()))
        export_predictions(out_dir, scan.name, result.over(scan.segments).to_input(scan.scene).masks, result.scores)
        with atomic_output(out_dir / f"{scan.name}.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, added=scan.added_masks, source=result.source, scores=result.scores,
                                    segment_labels=scan.segments.astype(np.int32))
    return total


def read_added_masks(path: str | Path, num_segments: int) -> np.ndarray:
    """(A, S) bool masks of a ``round_k/added/<scene>.npz``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            added = data["added"].astype(bool)
    except (OSError, KeyError, ValueError) as error:
        raise InputError(path, f"not a densification file: {error}") from None
    if added.ndim != 2 or added.shape[1] != num_segments:
        raise InputError(path, f"added masks over {added.shape[-1]} segments, expected {num_segments}")
    return added


# ------------------------------------------------------------------------------------------------ rounds

@dataclass
class SelfTrainResult:
    run_dir: Path
    rounds: list[int]  # the rounds trained by this call (finished ones are skipped)
    checkpoint: Path | None  # the last round's final checkpoint
    losses: dict[int, list[float]]


def run_config(run_dir: Path, config: SelfTrainConfig | None) -> SelfTrainConfig:
    """The configuration of a run: the one saved in the run folder (a different explicit one is an
    error), or ``config`` (default: :func:`default_preset`) for a new run."""
    path = run_dir / CONFIG_FILE
    if path.is_file():
        return read_run_config(path, SelfTrainConfig, expected=config)
    return config or preset_config(default_preset())


def self_train(
    pseudo_dir: str | Path,
    scan_paths: Sequence[str | Path],
    run_dir: str | Path,
    config: SelfTrainConfig | None = None,
    *,
    rounds: int = 1,
    resume: bool = False,
    device: str | torch.device | None = None,
    max_steps: int | None = None,
    threads: int | None = None,
) -> SelfTrainResult:
    """Train ``rounds`` rounds on the pseudo masks of ``pseudo_dir``; ``scan_paths`` may be empty (each
    file's recorded scan is used) or name scans that replace them, matched by scene name.

    Finished rounds are skipped, so re-running with a larger ``rounds`` extends a run. An interrupted
    round continues only with ``resume``. ``max_steps`` caps the steps of each round trained in this
    call (to simulate an interruption). Works under ``torchrun`` (data-parallel).

    ``threads``: torch threads to train with; None: the count the run's first checkpoint was made with
    (results differ in the last bits between thread counts, so a resumed or extended run repeats an
    uninterrupted one only at the same count), or for a new run the process's current count.

    Raises:
        InputError: missing scans or pseudo masks, a run folder with another configuration, an
            interrupted round without ``resume``.
    """
    if rounds < 1:
        raise InputError(None, f"rounds must be at least 1, got {rounds}")
    run_dir = Path(run_dir)
    with distributed(device) as context:
        config = run_config(run_dir, config)
        scans = load_training_scans(pseudo_dir, scan_paths, config.model)
        if context.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            if not (run_dir / CONFIG_FILE).is_file():
                write_config(run_dir / CONFIG_FILE, config)
        _use_run_threads(run_dir, threads)
        torch.manual_seed(config.seed)
        done = set(finished_rounds(run_dir))
        trained: list[int] = []
        losses: dict[int, list[float]] = {}
        last_checkpoint = latest_checkpoint(round_dir(run_dir, max(done))) if done else None
        for index in range(1, rounds + 1):
            folder = round_dir(run_dir, index)
            if index in done:
                log.info("round %d already finished, skipping", index)
                continue
            previous = None
            if index > 1:
                previous = latest_checkpoint(round_dir(run_dir, index - 1))
                if previous is None or (index - 1) not in finished_rounds(run_dir):
                    raise InputError(round_dir(run_dir, index - 1), "previous round not finished")
                _prepare_added_masks(previous, scans, config, folder / ADDED_FOLDER, context)
            result = train_round(scans, folder, config, index, context, init_from=previous, resume=resume,
                                 max_steps=max_steps)
            losses[index] = result.losses
            last_checkpoint = result.checkpoint
            if result.last_step < round_steps(index, len(scans), config, context.world_size):
                break  # stopped early by max_steps: the round is not finished
            if context.is_main:
                summary = {"round": index, "steps": result.last_step, "checkpoint": str(result.checkpoint),
                           "final_loss": result.losses[-1] if result.losses else None,
                           "added_masks": int(sum(len(s.added_masks) for s in scans))}
                atomic_write_text(folder / DONE_FILE, json.dumps(summary, indent=2) + "\n")
            barrier(context)
            trained.append(index)
        return SelfTrainResult(run_dir, trained, last_checkpoint, losses)


def run_threads(run_dir: Path) -> int | None:
    """The torch thread count a run trained with: its first round's latest checkpoint's, None before any
    (or from a version that did not record it)."""
    checkpoint = latest_checkpoint(round_dir(run_dir, 1))
    if checkpoint is None:
        return None
    try:
        return int(json.loads((checkpoint / "state.json").read_text())["threads"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _use_run_threads(run_dir: Path, threads: int | None) -> None:
    """Train with ``threads``, else with the run's own count (:func:`run_threads`), else as the process is."""
    from unscene3d.threads import use_threads

    own = run_threads(run_dir)
    if threads is None and own is not None and own != torch.get_num_threads():
        log.info("training with %d thread(s), as this run started (results depend on it in the last bits)", own)
        threads = own
    elif threads is not None and own is not None and threads != own:
        log.warning("training with %d thread(s) where this run started with %d: results will differ from an "
                    "uninterrupted run in the last bits", threads, own)
    if threads is not None:
        use_threads(threads)


def _prepare_added_masks(previous: Path, scans: Sequence[SelfTrainScan], config: SelfTrainConfig,
                         added_dir: Path, context: DistributedContext) -> None:
    """Densify with the previous round's model, or re-read the masks a resumed round already added."""
    complete = all((added_dir / f"{scan.name}.npz").is_file() for scan in scans)
    if not complete:
        if context.is_main:
            model, _ = load_model(previous, context.device)
            count = densify_scans(model, scans, config, added_dir)
            log.info("densification with %s: %d masks added over %d scans -> %s", previous, count, len(scans), added_dir)
        barrier(context)
    for scan in scans:
        scan.added_masks = read_added_masks(added_dir / f"{scan.name}.npz", scan.num_segments)
