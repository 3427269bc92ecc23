"""Training the ranker on generated scenes: their instance labels come for free, so no human label is used.

``unscene3d train-ranker -o FILE`` (:func:`train_ranker`):

1. **examples**: for every generated scene (seeds ``first_seed`` onwards; ``generator`` "rooms": each a mesh or,
   for every second seed, the same room as a point cloud of its vertices; "scanlike": scenes that look like real
   scans, :func:`~unscene3d.synthetic.make_training_scene`), the candidates and their features, each candidate's
   target the IoU with the object it covers best (objects: every instance but wall, floor and ceiling). Each
   scene's examples are cached as ``<cache>/<scene>.npz`` (written atomically), so an interrupted run resumes;
2. **fit**: each member of the ensemble is trained on all examples with the binary cross-entropy against the
   IoU (a soft target), AdamW, its own seed; then, the same way, the view rankers (one ensemble per view of the
   features, :data:`~unscene3d.proposals.features.VIEWS`);
3. **validation**: the AP of the ranked masks on ``validation_scenes`` generated scenes never trained on;
4. the ranker file, recording this configuration, the command and the validation figures.

Every random number comes from the seeds, so the same command gives the same file.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from unscene3d.evaluation import evaluate_scenes
from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_output
from unscene3d.parallel import map_in_workers
from unscene3d.progress import format_duration
from unscene3d.proposals.candidates import ProposalConfig, propose
from unscene3d.proposals.features import FEATURE_NAMES, VIEWS, candidate_features
from unscene3d.proposals.ranker import Ranker, RankerConfig, SelectionConfig, select_candidates
from unscene3d.protocols import STRUCTURE_CLASS_IDS
from unscene3d.scene import Scene

log = logging.getLogger(__name__)

# Where the training scenes come from: make_synthetic_scene's rooms, or make_training_scene's scan-like scenes.
GENERATORS = ("rooms", "scanlike")

# Instances smaller than this are not objects to learn (the benchmark ignores them too).
MIN_OBJECT_POINTS = 100

# The generated scenes' edition, in the cached examples' names: raise it whenever a seed's scene changes, so that a
# cache of the scenes before is never mistaken for the scenes now. 2: sofas with loose seat and back cushions.
SCENES_EDITION = 2


@dataclass(frozen=True)
class TrainingConfig:
    """What ``train-ranker`` does (module docstring); the ranker file records it."""

    scenes: int = 400
    first_seed: int = 100_000
    validation_scenes: int = 40
    validation_seed: int = 900_000
    epochs: int = 30
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    generator: str = "rooms"
    views: bool = True  # also train a view ranker per feature view (ranker.py), for self-training
    ranker: RankerConfig = field(default_factory=RankerConfig)
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("ranker", "proposals", "selection")}
        return {**data, "ranker": asdict(self.ranker), "proposals": self.proposals.to_dict(),
                "selection": asdict(self.selection)}


def generated_scene(seed: int, generator: str = "rooms") -> Scene:
    """The generated training scene of ``seed``: with ``rooms`` a furnished room as a mesh, or for odd seeds as the
    point cloud of its vertices; with ``scanlike`` :func:`~unscene3d.synthetic.make_training_scene` (a room,
    L-shaped room or tabletop, as a scanned mesh or point cloud)."""
    if generator == "scanlike":
        from unscene3d.synthetic import make_training_scene

        return make_training_scene(seed)
    from unscene3d.synthetic import make_synthetic_scene

    scene = make_synthetic_scene(seed)
    if seed % 2:
        scene = Scene(f"{scene.name}_cloud", scene.vertices, np.zeros((0, 3), np.int64), scene.colors, gt=scene.gt)
    return scene


def example_file(cache: Path, seed: int, generator: str) -> Path:
    """Where a scene's examples are cached: named by generator, edition and seed, so a cache never mixes
    generators or editions of the scenes."""
    return cache / f"{generator}{SCENES_EDITION}_{seed}.npz"


def candidate_targets(masks: np.ndarray, labels: np.ndarray, gt: np.ndarray,
                      min_points: int = MIN_OBJECT_POINTS) -> np.ndarray:
    """(K,) each candidate's best IoU (in vertices) with a ground-truth object: an instance of at least
    ``min_points`` vertices that is not wall, floor or ceiling (``labels``: segment per vertex)."""
    instance = np.where(~np.isin(gt // 1000, STRUCTURE_CLASS_IDS) & (gt % 1000 > 0), gt, -1)
    ids, inverse = np.unique(instance, return_inverse=True)
    inverse = inverse.reshape(-1)
    objects = (ids >= 0) & (np.bincount(inverse, minlength=len(ids)) >= min_points)
    if not objects.any():
        return np.zeros(len(masks))
    count = masks.shape[1]
    overlap = np.zeros((count, len(ids)))
    np.add.at(overlap, (labels, inverse), 1.0)
    overlap = overlap[:, objects]
    inside = masks.astype(np.float64)
    intersection = inside @ overlap
    union = (inside @ np.bincount(labels, minlength=count))[:, None] + overlap.sum(axis=0)[None] - intersection
    return (intersection / np.maximum(union, 1.0)).max(axis=1)


def scan_candidates(scene: Scene, proposals: ProposalConfig) -> dict[str, np.ndarray]:
    """A scan's candidates, no labels needed: features, the masks (packed) and the segment of every vertex."""
    from unscene3d.pseudo.pipeline import segment_scene
    from unscene3d.segments import describe_segments

    segmentation = segment_scene(scene)
    segments = describe_segments(scene, segmentation.labels, segmentation.num_segments)
    candidates = propose(scene, segments, proposals)
    return {
        "features": candidate_features(segments, candidates, proposals),
        "masks": np.packbits(candidates.masks, axis=1),
        "num_segments": np.array(segments.num_segments),
        "labels": segments.labels.astype(np.int32),
    }


def scene_examples(scene: Scene, proposals: ProposalConfig) -> dict[str, np.ndarray]:
    """One scene's candidates (:func:`scan_candidates`) with their targets and the ground truth AP needs."""
    examples = scan_candidates(scene, proposals)
    masks = unpack_masks(examples)
    examples["targets"] = candidate_targets(masks, examples["labels"], scene.gt).astype(np.float32)
    examples["gt"] = scene.gt.astype(np.int64)
    return examples


def _build_one(cache: str, proposals: ProposalConfig, generator: str, _state: None, seed: int) -> tuple[int, float]:
    start = time.perf_counter()
    path = example_file(Path(cache), seed, generator)
    if not path.exists():
        examples = scene_examples(generated_scene(seed, generator), proposals)
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **examples)
    return seed, time.perf_counter() - start


def build_examples(seeds: list[int], cache: Path, proposals: ProposalConfig, workers: int = 1,
                   generator: str = "rooms") -> list[Path]:
    """Make (or find in ``cache``) every seed's examples; logs progress with rate and ETA."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = [seed for seed in seeds if not example_file(cache, seed, generator).exists()]
    if len(todo) < len(seeds):
        log.info("examples of %d of %d scenes found in %s", len(seeds) - len(todo), len(seeds), cache)
    start = time.perf_counter()
    for done, (seed, seconds) in enumerate(
            map_in_workers(partial(_build_one, str(cache), proposals, generator), todo, lambda: None, workers), 1):
        elapsed = time.perf_counter() - start
        if done == len(todo) or done % 10 == 0:
            log.info("examples %d/%d (scene %d took %.1fs); %.2f scenes/s, elapsed %s, ETA %s", done, len(todo),
                     seed, seconds, done / elapsed, format_duration(elapsed),
                     format_duration(elapsed / done * (len(todo) - done)))
    return [example_file(cache, seed, generator) for seed in seeds]


def read_examples(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def unpack_masks(examples: dict[str, np.ndarray]) -> np.ndarray:
    return np.unpackbits(examples["masks"], axis=1, count=int(examples["num_segments"])).astype(bool)


def select_examples(ranker: Ranker, examples: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scan's candidate masks (K, S) from its cached ``examples``, ``ranker``'s scores (K,) and the indices its
    selection keeps, in score order."""
    masks = unpack_masks(examples)
    scores = ranker.score(examples["features"])
    sizes = np.bincount(examples["labels"], minlength=masks.shape[1]).astype(np.float64)
    return masks, scores, select_candidates(masks, scores, sizes, ranker.selection)


class RankerNet(torch.nn.Module):
    """One ensemble member as trained: standardised features -> the logit of the expected IoU."""

    def __init__(self, num_features: int, config: RankerConfig) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = num_features
        for _ in range(config.layers):
            layers += [torch.nn.Linear(width, config.hidden), torch.nn.ReLU(), torch.nn.Dropout(config.dropout)]
            width = config.hidden
        layers.append(torch.nn.Linear(width, 1))
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features).squeeze(-1)

    def as_layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (weight, bias) of each linear layer, for :class:`~unscene3d.proposals.ranker.Ranker`."""
        return [(layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
                for layer in self.layers if isinstance(layer, torch.nn.Linear)]


def fit_ranker(features: np.ndarray, targets: np.ndarray, config: TrainingConfig) -> Ranker:
    """Train the ensemble on ``features`` (n, F) against ``targets`` (n,) IoU in [0, 1]."""
    mean = features.mean(axis=0).astype(np.float64)
    std = features.std(axis=0).astype(np.float64)
    std = np.where(std > 1e-6, std, 1.0)
    ranker = train_members(Ranker([], mean, std, config.ranker, config.proposals, config.selection), features,
                           targets, config)
    if config.views:
        for name in VIEWS:
            log.info("the %s view ranker (%d of the features)", name, len(VIEWS[name]))
            ranker.views[name] = train_members(ranker.view(name, []), features, targets, config)
    return ranker


def member_nets(ranker: Ranker) -> list[RankerNet]:
    """The ranker's ensemble as torch networks, to train further."""
    nets = []
    for layers in ranker.members:
        net = RankerNet(len(ranker.feature_mean), ranker.config)
        linear = [layer for layer in net.layers if isinstance(layer, torch.nn.Linear)]
        with torch.no_grad():
            for layer, (weight, bias) in zip(linear, layers, strict=True):
                layer.weight.copy_(torch.from_numpy(np.asarray(weight, dtype=np.float32)))
                layer.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float32)))
        nets.append(net)
    return nets


def train_members(ranker: Ranker, features: np.ndarray, targets: np.ndarray, config: TrainingConfig, *,
                  weights: np.ndarray | None = None, warm_start: bool = False) -> Ranker:
    """A copy of ``ranker`` whose members are trained on ``features`` against ``targets`` (IoU in [0, 1]) with the
    binary cross-entropy, each example weighted by ``weights`` (default 1): new members (``config.ranker``
    sizes), or with ``warm_start`` the ranker's own members trained further. Its feature standardisation is
    kept. Logs progress at least every 15 s."""
    inputs = torch.from_numpy(ranker.standardise(features))
    labels = torch.from_numpy(np.clip(targets, 0.0, 1.0).astype(np.float32))
    example_weights = None if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float32))
    nets = member_nets(ranker) if warm_start else [None] * config.ranker.ensemble
    threads = torch.get_num_threads()
    # Layers of a few thousand weights: one thread is fastest, and a second one on a busy machine made each step
    # 20x slower (15 ms -> 300 ms at load 9 on 2 cores, measured).
    torch.set_num_threads(1)
    progress = _EpochProgress(len(nets) * config.epochs)
    try:
        members = [_train_member(net, member, inputs, labels, example_weights, config, progress, len(nets))
                   for member, net in enumerate(nets)]
    finally:
        torch.set_num_threads(threads)
    return replace(ranker, members=members, info=dict(ranker.info))


class _EpochProgress:
    """A log line at least every 15 s with the rate and the time left, over all members' epochs."""

    def __init__(self, total_epochs: int) -> None:
        self.total, self.done = total_epochs, 0
        self.start = self.last = time.perf_counter()

    def epoch(self, member: int, members: int, epoch: int, epochs: int, loss: float) -> None:
        self.done += 1
        now = time.perf_counter()
        if now - self.last >= 15 or self.done == self.total:
            self.last = now
            log.info("ranker member %d/%d epoch %d/%d: loss %.4f; %.2f epochs/s, ETA %s", member + 1, members,
                     epoch + 1, epochs, loss, self.done / (now - self.start),
                     format_duration((now - self.start) / self.done * (self.total - self.done)))


def _train_member(net: RankerNet | None, member: int, inputs: torch.Tensor, labels: torch.Tensor,
                  weights: torch.Tensor | None, config: TrainingConfig, progress: _EpochProgress,
                  members: int) -> list[tuple[np.ndarray, np.ndarray]]:
    torch.manual_seed(config.seed * 1000 + member)
    net = net if net is not None else RankerNet(inputs.shape[1], config.ranker)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    order = torch.Generator().manual_seed(config.seed * 1000 + member)
    net.train()
    for epoch in range(config.epochs):
        permutation = torch.randperm(len(inputs), generator=order)
        total = 0.0
        for first in range(0, len(inputs), config.batch_size):
            batch = permutation[first:first + config.batch_size]
            losses = torch.nn.functional.binary_cross_entropy_with_logits(net(inputs[batch]), labels[batch],
                                                                          reduction="none")
            if weights is None:
                loss = losses.mean()
            else:
                loss = (losses * weights[batch]).sum() / weights[batch].sum().clamp_min(1e-12)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        progress.epoch(member, members, epoch, config.epochs, total / len(inputs))
    return net.eval().as_layers()


def validate(ranker: Ranker, paths: list[Path]) -> dict[str, float]:
    """AP / AP50 / AP25 (percent, ScanNet protocol) of the ranker's masks on the scenes of ``paths``."""
    items = []
    for path in paths:
        examples = read_examples(path)
        masks, scores, kept = select_examples(ranker, examples)
        items.append((path.stem, Instances(masks[kept][:, examples["labels"]], scores[kept]), examples["gt"]))
    result = evaluate_scenes(items)
    return {name: round(result.overall[name], 1) for name in ("AP", "AP50", "AP25")}


def train_ranker(out: str | Path, config: TrainingConfig | None = None, *, cache: str | Path | None = None,
                 workers: int = 1) -> Ranker:
    """Build the examples, fit, validate and write the ranker file ``out`` (module docstring)."""
    config = config or TrainingConfig()
    out = Path(out)
    cache = Path(cache) if cache is not None else out.with_name(out.name + ".examples")
    start = time.perf_counter()
    train_seeds = list(range(config.first_seed, config.first_seed + config.scenes))
    validation_seeds = list(range(config.validation_seed, config.validation_seed + config.validation_scenes))
    train_paths = build_examples(train_seeds + validation_seeds, cache, config.proposals, workers,
                                 config.generator)[:len(train_seeds)]
    validation_paths = [example_file(cache, seed, config.generator) for seed in validation_seeds]
    examples = [read_examples(path) for path in train_paths]
    features = np.concatenate([e["features"] for e in examples])
    targets = np.concatenate([e["targets"] for e in examples])
    log.info("fitting on %d candidates of %d scenes (%d features)", len(features), len(examples), len(FEATURE_NAMES))
    ranker = fit_ranker(features, targets, config)
    figures = validate(ranker, validation_paths) if validation_paths else {}
    log.info("validation on %d generated scenes never trained on: AP / AP50 / AP25 %s", len(validation_paths),
             " / ".join(f"{figures[k]:.1f}" for k in ("AP", "AP50", "AP25")) if figures else "-")
    ranker.info = {
        "command": "unscene3d train-ranker " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["train-ranker"] else "",
        "training": config.to_dict(),
        "candidates": int(len(features)),
        "validation": figures,
        "views_validation": {name: validate(view, validation_paths) if validation_paths else {}
                             for name, view in ranker.views.items()},
        "seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    ranker.save(out)
    return ranker
