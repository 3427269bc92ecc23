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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unscene3d.errors import InputError
from unscene3d.model.backbone import BackboneConfig, build_backbone, sparse_input
from unscene3d.model.checkpoint import latest_checkpoint, load_checkpoint
from unscene3d.scene import Scene
from unscene3d.train.augment import AugmentConfig, augment_view, random_crop
from unscene3d.train.configs import checkpoint_config
from unscene3d.train.contrastive import csc_info_nce, info_nce, sample_matches
from unscene3d.train.distributed import DistributedContext, distributed
from unscene3d.train.loop import LoopPlan, StepOutput, TrainLoop
from unscene3d.voxelize import scene_point_features, voxelize

log = logging.getLogger(__name__)

# log.csv: column -> format (see unscene3d.train.loop.LoopPlan)
LOG_COLUMNS = {"step": "d", "loss": ".6f", "accuracy": ".4f", "lr": ".6g", "pairs": "d", "voxels": "d",
               "step_seconds": ".3f", "elapsed_seconds": ".1f"}


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
    with distributed(device) as context:
        return _pretrain(scenes, run_dir, config, resume, context, max_steps)


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
        config = checkpoint_config(checkpoint, PretrainConfig, expected=config)
    elif latest_checkpoint(run_dir) is not None:
        raise InputError(run_dir, "the run folder already holds checkpoints: pass --resume or choose a new folder")
    config = config or preset_config("cpu-small")
    scans = prepare_scans(scenes, config)
    model = build_backbone(config.backbone, seed=config.seed)
    loop = TrainLoop(model, make_optimizer(model, config), context, amp=config.amp, sync_batchnorm=True)
    if checkpoint is not None:
        loop.restore(checkpoint)
        log.info("resuming %s from step %d", run_dir, loop.start_step)
    if context.is_main:
        log.info(
            "pretraining %s: %d scans, preset %s, %d steps, batch %d x %d rank(s), device %s%s",
            run_dir, len(scans), config.preset, config.steps, config.batch_size, context.world_size, context.device,
            ", AMP" if loop.use_amp else "",
        )

    def step_fn(step: int, train_model: torch.nn.Module) -> StepOutput:
        batch = make_step_batch(scans, config, step, context.rank, context.device)
        with loop.autocast():
            loss, accuracy = contrastive_loss(train_model, batch, config)
        return StepOutput(loss, {"loss": loss.detach(), "accuracy": accuracy.detach()},
                          {"pairs": len(batch.pairs_a), "voxels": batch.num_voxels})

    plan = LoopPlan(
        folder=run_dir, total_steps=config.steps, learning_rate=lambda step: learning_rate(config, step),
        columns=LOG_COLUMNS, progress="step {step}/{total} loss {loss:.4f} acc {accuracy:.3f} lr {lr:.3g}",
        log_every=config.log_every, checkpoint_every=config.checkpoint_every, keep_checkpoints=config.keep_checkpoints,
        checkpoint_state={"backbone": config.backbone.to_dict(), "train": config.to_dict(),
                          "scans": [scan.name for scan in scans]},
    )
    result = loop.run(step_fn, plan, max_steps)
    return PretrainResult(run_dir=run_dir, last_step=result.last_step, losses=result.losses, checkpoint=result.checkpoint)
