"""Self-supervised pretraining of the sparse backbone on unlabeled scans (PointContrast / CSC).

A training step takes ``batch_size`` scans (per rank), crops each, makes two independently augmented
views, voxelises both, runs the two views through the network as one sparse batch, samples matched voxel
pairs and minimises the contrastive loss on the head features. The step's randomness is drawn from
``numpy.random.default_rng([seed, step, rank])``, so a step does not depend on the steps before it: with
the weights, optimizer state and step restored from a checkpoint, ``--resume`` reproduces the loss curve
of an uninterrupted run exactly (on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unscene3d.errors import InputError
from unscene3d.model.backbone import (
    BackboneConfig,
    Res16UNet,
    build_backbone,
    sparse_input,
)
from unscene3d.model.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from unscene3d.progress import format_duration
from unscene3d.scene import Scene
from unscene3d.train.augment import AugmentConfig, augment_view, random_crop
from unscene3d.train.contrastive import csc_info_nce, info_nce, sample_matches
from unscene3d.train.csvlog import append_log, prepare_log
from unscene3d.train.distributed import (
    DistributedContext,
    barrier,
    init_distributed,
    mean_over_ranks,
    shutdown_distributed,
)
from unscene3d.voxelize import scene_point_features, voxelize

log = logging.getLogger(__name__)

LOG_FILE = "log.csv"
LOG_COLUMNS = ("step", "loss", "accuracy", "lr", "pairs", "voxels", "step_seconds", "elapsed_seconds")


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that defines a run (saved in every checkpoint; a resumed run must match it)."""

    preset: str = "cpu-small"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    steps: int = 300
    batch_size: int = 2
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    loss: str = "csc"
    num_pairs: int = 1024
    temperature: float = 0.4
    csc_radius: float = 1.0
    csc_sectors: int = 4
    checkpoint_every: int = 50
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 0
    amp: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise InputError(None, f"unknown optimizer {self.optimizer!r}: expected 'sgd' or 'adamw'")
        if self.loss not in ("pointcontrast", "csc"):
            raise InputError(None, f"unknown loss {self.loss!r}: expected 'pointcontrast' or 'csc'")
        for name in ("steps", "batch_size", "num_pairs", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise InputError(None, f"{name} must be at least 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["backbone"] = self.backbone.to_dict()
        data["augment"] = self.augment.to_dict()
        return json.loads(json.dumps(data))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        values = dict(data)
        values["backbone"] = BackboneConfig.from_dict(values["backbone"])
        values["augment"] = AugmentConfig.from_dict(values["augment"])
        return cls(**values)


def preset_config(name: str, **overrides: Any) -> PretrainConfig:
    """``paper``: official network sizes, CSC loss with 4096 pairs, SGD as PointContrast/CSC.
    ``cpu-small``: the same widths (96-d features) with one block per stage, 1.5 m crops, 1024 pairs,
    PointContrast loss, milder colour jitter, AdamW -- 300 steps take about 8-10 minutes on 2 CPU cores."""
    if name == "paper":
        config = PretrainConfig(
            preset="paper",
            backbone=BackboneConfig(),
            augment=AugmentConfig(crop_size=4.0, min_crop_points=2000),
            steps=60000, batch_size=8, optimizer="sgd", lr=0.1, weight_decay=1e-4, warmup_steps=500,
            loss="csc", num_pairs=4096, temperature=0.4, csc_radius=2.0,
            checkpoint_every=1000, log_every=20,
        )
    elif name == "cpu-small":
        config = PretrainConfig(
            preset="cpu-small",
            backbone=BackboneConfig(layers=(1, 1, 1, 1, 1, 1, 1, 1), stem_kernel=3),
            # Milder colour jitter than the paper's: in a few hundred steps, strong jitter mostly teaches
            # colour invariance and throws away the colour cue that separates objects.
            augment=AugmentConfig(crop_size=1.5, min_crop_points=500, color_shift=0.05, color_contrast=0.1, color_noise=0.01),
            # Plain PointContrast: at this budget it separated instances better than CSC on scene0000_00.
            loss="pointcontrast",
        )
    else:
        raise InputError(None, f"unknown preset {name!r}: expected 'paper' or 'cpu-small'")
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class TrainingScan:
    name: str
    points: np.ndarray
    features: np.ndarray


def prepare_scans(scenes: Sequence[Scene], config: PretrainConfig) -> list[TrainingScan]:
    """The network inputs of each scan (points + colour [+ normals]), kept in memory for training."""
    if not scenes:
        raise InputError(None, "no scans to train on")
    scans = []
    for scene in scenes:
        if scene.vertices.shape[0] < 10:
            raise InputError(scene.source or scene.name, "too few points to train on")
        features = scene_point_features(scene, config.backbone.input_channels)
        scans.append(TrainingScan(scene.name, scene.vertices.astype(np.float64), features))
    return scans


def learning_rate(config: PretrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to zero at ``config.steps`` (a pure function of the step)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@dataclass
class StepBatch:
    tensor: Any
    pairs_a: torch.Tensor
    pairs_b: torch.Tensor
    positions: torch.Tensor
    scan_ids: torch.Tensor
    num_voxels: int


def make_step_batch(
    scans: Sequence[TrainingScan], config: PretrainConfig, step: int, rank: int, device: torch.device
) -> StepBatch:
    """The two-view batch of one step (deterministic in seed, step and rank)."""
    rng = np.random.default_rng([config.seed, step, rank])
    chosen = rng.choice(len(scans), size=config.batch_size, replace=len(scans) < config.batch_size)
    views_a, views_b, matches = [], [], []
    per_scan_pairs = max(config.num_pairs // config.batch_size, 1)
    for scan_index in chosen:
        scan = scans[int(scan_index)]
        keep = random_crop(scan.points, rng, config.augment.crop_size, config.augment.min_crop_points)
        points, features = scan.points[keep], scan.features[keep]
        vox = []
        for _ in range(2):
            view_points, view_features = augment_view(points, features, rng, config.augment, config.backbone.input_channels)
            vox.append(voxelize(view_points, view_features, config.backbone.voxel_size))
        voxel_a, voxel_b, representatives = sample_matches(vox[0].inverse, vox[1].inverse, per_scan_pairs, rng)
        views_a.append(vox[0])
        views_b.append(vox[1])
        matches.append((voxel_a, voxel_b, points[representatives]))
    packed = sparse_input(views_a + views_b, device)
    offsets = packed.offsets
    count = config.batch_size
    pairs_a = np.concatenate([offsets[i] + m[0] for i, m in enumerate(matches)])
    pairs_b = np.concatenate([offsets[count + i] + m[1] for i, m in enumerate(matches)])
    positions = np.concatenate([m[2] for m in matches]).astype(np.float32)
    scan_ids = np.concatenate([np.full(len(m[0]), i) for i, m in enumerate(matches)])
    return StepBatch(
        tensor=packed.tensor,
        pairs_a=torch.from_numpy(pairs_a).to(device),
        pairs_b=torch.from_numpy(pairs_b).to(device),
        positions=torch.from_numpy(positions).to(device),
        scan_ids=torch.from_numpy(scan_ids).to(device),
        num_voxels=int(sum(v.num_voxels for v in views_a + views_b)),
    )


def contrastive_loss(model: torch.nn.Module, batch: StepBatch, config: PretrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    features = model(batch.tensor).output.features
    anchor, positive = features[batch.pairs_a], features[batch.pairs_b]
    if config.loss == "csc":
        return csc_info_nce(
            anchor, positive, batch.positions, batch.scan_ids, config.temperature, config.csc_radius, config.csc_sectors
        )
    return info_nce(anchor, positive, config.temperature)


def make_optimizer(model: torch.nn.Module, config: PretrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into safetensors-friendly tensors and JSON-friendly metadata."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for param_id, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{param_id}.{key}"] = value
            else:
                scalars[f"{param_id}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the optimizer state dict written by :func:`optimizer_to_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, param_id, key = name.split(".", 2)
            state.setdefault(int(param_id), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


@dataclass
class PretrainResult:
    run_dir: Path
    last_step: int
    losses: list[float]
    checkpoint: Path | None


def pretrain(
    scenes: Sequence[Scene],
    run_dir: str | Path,
    config: PretrainConfig | None = None,
    *,
    resume: bool = False,
    device: str | torch.device | None = None,
    max_steps: int | None = None,
) -> PretrainResult:
    """Train the backbone contrastively on ``scenes``; checkpoints, ``log.csv`` and progress in ``run_dir``.

    ``resume``: continue from the run's latest checkpoint (its config is used; a different ``config``
    is an error). ``max_steps`` stops early after that many steps of this call (the schedule still
    follows ``config.steps``) -- used to simulate an interrupted run. Works under ``torchrun``.

    Raises:
        InputError: no scans; ``run_dir`` already holds a run and ``resume`` is off; ``resume`` without a
            checkpoint; a checkpoint from another configuration.
    """
    run_dir = Path(run_dir)
    context = init_distributed(device)
    try:
        return _pretrain(scenes, run_dir, config, resume, context, max_steps)
    finally:
        shutdown_distributed(context)


def _pretrain(
    scenes: Sequence[Scene],
    run_dir: Path,
    config: PretrainConfig | None,
    resume: bool,
    context: DistributedContext,
    max_steps: int | None,
) -> PretrainResult:
    checkpoint = None
    if resume:
        folder = latest_checkpoint(run_dir)
        if folder is None:
            raise InputError(run_dir, "--resume given but the run folder has no complete checkpoint")
        checkpoint = load_checkpoint(folder, with_optimizer=True)
        saved = PretrainConfig.from_dict(checkpoint.state["train"])
        if config is not None and config.to_dict() != saved.to_dict():
            changed = sorted(k for k, v in config.to_dict().items() if saved.to_dict().get(k) != v)
            raise InputError(folder, f"checkpoint was made with another configuration (differs in: {', '.join(changed)})")
        config = saved
    elif latest_checkpoint(run_dir) is not None:
        raise InputError(run_dir, "the run folder already holds checkpoints: pass --resume or choose a new folder")
    config = config or preset_config("cpu-small")
    scans = prepare_scans(scenes, config)
    device = context.device
    use_amp = config.amp and device.type == "cuda"

    model: torch.nn.Module = build_backbone(config.backbone, seed=config.seed)
    optimizer = make_optimizer(model, config)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_step = 0
    if checkpoint is not None:
        load_model_state(model, checkpoint.model, checkpoint.folder)
        optimizer.load_state_dict(optimizer_from_tensors(checkpoint.optimizer, checkpoint.state["optimizer"]))
        if use_amp and checkpoint.state.get("grad_scaler"):
            scaler.load_state_dict(checkpoint.state["grad_scaler"])
        if "rng.torch" in checkpoint.optimizer:
            torch.set_rng_state(checkpoint.optimizer["rng.torch"])
        start_step = checkpoint.step
        log.info("resuming %s from step %d", run_dir, start_step)
    model.to(device)
    train_model = model
    if context.enabled:
        if device.type == "cuda":
            train_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        prepare_log(run_dir / LOG_FILE, LOG_COLUMNS, start_step)
        log.info(
            "pretraining %s: %d scans, preset %s, %d steps, batch %d x %d rank(s), device %s%s",
            run_dir, len(scans), config.preset, config.steps, config.batch_size, context.world_size, device,
            ", AMP" if use_amp else "",
        )

    end_step = config.steps if max_steps is None else min(config.steps, start_step + max_steps)
    losses: list[float] = []
    started = time.perf_counter()
    saved_folder = checkpoint.folder if checkpoint is not None else None
    train_model.train()
    for step in range(start_step, end_step):
        step_start = time.perf_counter()
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = make_step_batch(scans, config, step, context.rank, device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            loss, accuracy = contrastive_loss(train_model, batch, config)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        metrics = mean_over_ranks(torch.stack([loss.detach(), accuracy.detach()]), context).tolist()
        losses.append(metrics[0])
        if context.is_main:
            elapsed = time.perf_counter() - started
            append_log(run_dir / LOG_FILE, [
                step + 1, f"{metrics[0]:.6f}", f"{metrics[1]:.4f}", f"{lr:.6g}", len(batch.pairs_a),
                batch.num_voxels, f"{time.perf_counter() - step_start:.3f}", f"{elapsed:.1f}",
            ])
            done = step + 1 - start_step
            if (step + 1) % config.log_every == 0 or step + 1 == end_step or done == 1:
                rate = done / elapsed if elapsed > 0 else float("inf")
                log.info(
                    "step %d/%d loss %.4f acc %.3f lr %.3g | %.2f steps/s, elapsed %s, ETA %s",
                    step + 1, config.steps, metrics[0], metrics[1], lr, rate, format_duration(elapsed),
                    format_duration((end_step - step - 1) / rate) if rate > 0 else "?",
                )
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == end_step:
            if context.is_main:
                saved_folder = _save(run_dir, step + 1, model, optimizer, scaler, config, scans, use_amp)
            barrier(context)
    return PretrainResult(run_dir=run_dir, last_step=end_step, losses=losses, checkpoint=saved_folder)


def _save(
    run_dir: Path, step: int, model: Res16UNet, optimizer: torch.optim.Optimizer, scaler, config: PretrainConfig,
    scans: Sequence[TrainingScan], use_amp: bool,
) -> Path:
    tensors, meta = optimizer_to_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    state = {
        "backbone": config.backbone.to_dict(),
        "train": config.to_dict(),
        "optimizer": meta,
        "grad_scaler": scaler.state_dict() if use_amp else None,
        "scans": [scan.name for scan in scans],
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    folder = save_checkpoint(run_dir, step, model.state_dict(), tensors, state, keep=config.keep_checkpoints)
    log.info("checkpoint step %d -> %s", step, folder)
    return folder
