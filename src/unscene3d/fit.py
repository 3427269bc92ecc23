"""``unscene3d fit``: the whole method on a user's own scans, in one resumable command.

Stages, each skipped when its output is already complete (so a re-run after a crash or Ctrl-C resumes):

1. pseudo masks of every scan (:mod:`unscene3d.pseudo.pipeline`: the shipped model of objects unless told);
1b. with the model of objects, its ranker rounds (:mod:`unscene3d.ranker_rounds`): the ranker self-trained on
   all the scans together; the last round's masks become the pseudo masks the next stage trains on;
2. self-training rounds on those scans (:mod:`unscene3d.train.selftrain`; the ``segment`` preset on a
   CPU, ``paper`` on a GPU); an interrupted round continues from its last checkpoint;
3. each round's masks for every scan, in the benchmark format with a coloured PLY per scan;
4. with ground truth (the scan's own, ``gt_dir``, or ``gt/<scene>.txt`` beside the scan file), the AP of
   the pseudo masks and of every round (a table like the paper's Table 4);
5. the viewer page of it all.

Run folder::

    RUN_DIR/run.json                    what made the run: scans by content, options, code version
    RUN_DIR/pseudo/                     pseudo masks (benchmark format, <scene>.npz, coloured PLYs)
    RUN_DIR/ranker/                     ranker rounds: round_k.safetensors and round_k/ masks (like pseudo/)
    RUN_DIR/config.json, round_k/       self-training (checkpoints, log.csv, added/ masks)
    RUN_DIR/predictions/round_k/        round k's masks per scan (<scene>.txt, pred_mask/, _instances.ply)
    RUN_DIR/evaluation.json             AP / AP50 / AP25 (percent) of pseudo masks and rounds, with ground truth
    RUN_DIR/evaluation_scans.json       the same per scan
    RUN_DIR/index.html                  the 3D page (open it in a browser)

What a round's masks are (``output``): ``union`` (default) keeps every pseudo mask and adds the masks the
round's model adds to its training scans (:func:`unscene3d.train.selftrain.densify_training_scan`: the
paper's densification of its confident new predictions, and for the segment model the re-cut on its
learned segment features), ranked after the pseudo masks; ``model`` is the model's own predictions, as
``predict`` gives them for a new scan. docs/benchmarks.md ("Self-training") measures both; with the
segment model the union is higher.

A re-run (:func:`plan_rerun`) reuses only what the same inputs would make again. New scans, or scans whose
content changed, get their pseudo masks and the rounds are trained again on all scans; another ``output``
writes every round's masks again. A re-run that drops a scan of the run, or asks for other pseudo-mask
options, another training configuration or another release of the code stops before writing anything.
With a ``shard`` only that shard's pseudo masks are made (checked the same way first), so a cluster's job
array can share the slowest stage out; a run without a shard then trains.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_write_text
from unscene3d.io.scan import Shard
from unscene3d.model.mask3d import Mask3D
from unscene3d.model.segment_model import SegmentModel
from unscene3d.progress import format_duration
from unscene3d.proposals.self_training import SelfTrainingConfig
from unscene3d.pseudo.pipeline import PseudoMaskOptions, run_pseudo_masks
from unscene3d.ranker_rounds import RANKER_FOLDER, run_ranker_rounds
from unscene3d.run_record import (
    RUN_FILE,
    RunRecord,
    changed_scans,
    code_difference,
    code_version,
    names_phrase,
    read_record,
    scan_records,
    write_record,
)
from unscene3d.scene import Scene
from unscene3d.train.selftrain import (
    SelfTrainConfig,
    densify_training_scan,
    finished_rounds,
    load_model,
    predict_training_scan,
    round_dir,
    round_steps,
    run_config,
    self_train,
)
from unscene3d.train.selftrain_data import SelfTrainScan, load_training_scans, pair_scans

log = logging.getLogger(__name__)

OUTPUTS = ("union", "model")
PSEUDO_FOLDER = "pseudo"
PREDICTIONS_FOLDER = "predictions"
EVALUATION_FILE = "evaluation.json"
SCANS_EVALUATION_FILE = "evaluation_scans.json"
PAGE_FILE = "index.html"
_DONE = "done.json"


@dataclass(frozen=True)
class FitOptions:
    """What ``fit`` does; ``config`` None = the run's own, or the default preset for a new run."""

    rounds: int = 4
    config: SelfTrainConfig | None = None
    pseudo: PseudoMaskOptions = field(default_factory=PseudoMaskOptions)
    output: str = "union"
    device: str | None = None
    workers: int = 1
    page: bool = True
    gt_dir: Path | None = None  # ground truth <scene>.txt for scans that carry none
    threads: int | None = None  # torch threads of training (None: the run's own, see selftrain.self_train)
    # the ranker rounds (None: SelfTrainingConfig() with the model of objects' pseudo masks, else none)
    self_training: SelfTrainingConfig | None = None

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise InputError(None, f"rounds must be at least 1, got {self.rounds}")
        if self.output not in OUTPUTS:
            raise InputError(None, f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        if self.self_training is not None and self.self_training.rounds and self.pseudo.resolved_source() != "model":
            raise InputError(None, f"ranker rounds self-train the model of objects, but the pseudo masks come from "
                                   f"{self.pseudo.resolved_source()}: drop --ranker-rounds or the cut's options")

    def resolved_self_training(self) -> SelfTrainingConfig:
        """The ranker rounds' settings: the given ones, else the defaults with the model's pseudo masks, else none."""
        if self.self_training is not None:
            return self.self_training
        return SelfTrainingConfig(rounds=SelfTrainingConfig().rounds if self.pseudo.resolved_source() == "model" else 0)


@dataclass
class FitResult:
    run_dir: Path
    rounds: list[int]
    predictions: dict[str, Path]  # "pseudo" and "round_k" -> folder of benchmark files
    evaluation: dict[str, dict[str, float]] | None  # the same keys -> AP figures (percent), with ground truth
    page: Path | None
    per_scan: dict[str, dict[str, dict[str, float]]] | None = None  # scene -> the same keys -> AP figures
    pseudo_masks: list[Path] = field(default_factory=list)  # the <scene>.npz of the scans this call covered


class _Progress:
    """One line per stage of the whole run, with the time spent and an estimate of the time left."""

    def __init__(self, total_steps: int, num_scans: int) -> None:
        self.start = time.perf_counter()
        self.total_steps = total_steps
        self.num_scans = num_scans
        self.steps_done = 0
        self.seconds_per_step: float | None = None

    def stage(self, text: str) -> None:
        elapsed = time.perf_counter() - self.start
        left = ""
        if self.seconds_per_step is not None:
            left = f", about {format_duration(self.seconds_per_step * (self.total_steps - self.steps_done))} of " \
                   "training left"
        log.info("fit: %s (elapsed %s%s)", text, format_duration(elapsed), left)

    def trained(self, steps: int, seconds: float) -> None:
        if steps:
            self.steps_done += steps
            self.seconds_per_step = seconds / steps


def round_masks(model: Mask3D | SegmentModel, scan: SelfTrainScan, config: SelfTrainConfig, output: str,
                pseudo_scores: np.ndarray) -> Instances:
    """A round's masks of a scan (``output``, see the module docstring); ``pseudo_scores`` are the scores of
    ``scan.pseudo_masks``. ``union``: the pseudo masks, then the round's added masks ranked below them."""
    if output == "model":
        return predict_training_scan(model, scan, config)
    result = densify_training_scan(model, scan, config)
    floor = float(pseudo_scores.min()) if len(pseudo_scores) else 1.0
    added_scores = floor * result.scores / max(float(result.scores.max(initial=0.0)), 1e-12) * (1 - 1e-6)
    pseudo = Instances(scan.pseudo_masks, pseudo_scores, queries=np.full(len(pseudo_scores), -1))
    return Instances.cat([pseudo, Instances(result.masks, added_scores, queries=result.source)]).over(scan.segments)


def _write_round(run_dir: Path, index: int, scans: Sequence[SelfTrainScan], config: SelfTrainConfig,
                 output: str, device: str | None, pseudo_dir: Path) -> Path:
    from unscene3d.predict import write_instances
    from unscene3d.pseudo.pipeline import read_pseudo_masks

    folder = run_dir / PREDICTIONS_FOLDER / f"round_{index}"
    if (folder / _DONE).is_file():
        return folder
    model, _ = load_model(round_dir(run_dir, index), device)
    counts = []
    for scan in scans:
        pseudo_scores = read_pseudo_masks(pseudo_dir / f"{scan.name}.npz").instances.scores
        prediction = round_masks(model, scan, config, output, pseudo_scores)
        write_instances(folder, scan.scene, prediction)
        counts.append(len(prediction.scores))
    atomic_write_text(folder / _DONE, json.dumps({"round": index, "output": output, "masks": counts}) + "\n")
    return folder


def scan_ground_truth(scan: SelfTrainScan, gt_dir: Path | None) -> np.ndarray | None:
    """:func:`scene_ground_truth` of a training scan."""
    return scene_ground_truth(scan.scene, gt_dir)


def scene_ground_truth(scene: Scene, gt_dir: Path | None) -> np.ndarray | None:
    """Ground truth per input point: the scan's own, else ``<gt_dir>/<scene>.txt``, else a ``gt/<scene>.txt``
    or ``instance_gt/<scene>.txt`` beside the scan file (the layout ``unscene3d synthetic`` writes).

    Raises:
        InputError: the file found is malformed or has not one line per input point. ``fit`` runs this on
            every scan before any work, so a wrong file stops it at once, not after training.
    """
    from unscene3d.io.benchmark import read_gt_txt

    if scene.gt is not None:
        return scene.to_input(scene.gt, 0)
    candidates = [] if gt_dir is None else [gt_dir / f"{scene.name}.txt"]
    if scene.source is not None:
        beside = Path(scene.source).parent
        candidates += [beside / folder / f"{scene.name}.txt" for folder in ("gt", "instance_gt")]
    for path in candidates:
        if path.is_file():
            return read_gt_txt(path, scene.input_size)
    return None


Figures = dict[str, dict[str, float]]  # stage ("pseudo", "ranker_k", "round_k") -> AP / AP50 / AP25 (percent)


def _evaluate(scans: Sequence[SelfTrainScan], folders: dict[str, Path],
              gt_dir: Path | None) -> tuple[Figures, dict[str, Figures]] | None:
    """Every stage's figures over all scans with ground truth, and per scan (scene -> stage -> figures)."""
    from unscene3d.evaluation import evaluate_scenes
    from unscene3d.io.benchmark import read_predictions

    truths = {scan.name: gt for scan in scans if (gt := scan_ground_truth(scan, gt_dir)) is not None}
    if not truths:
        return None
    figures: Figures = {}
    per_scan: dict[str, Figures] = {name: {} for name in truths}
    for name, folder in folders.items():
        items = []
        for scene_name, gt in truths.items():
            masks, _, scores = read_predictions(folder, scene_name, len(gt))
            items.append((scene_name, Instances(masks, scores), gt))
        result = evaluate_scenes(items)
        figures[name] = _rounded(result.overall)
        for scene_name, scene_figures in result.per_scene.items():
            per_scan[scene_name][name] = dict(scene_figures)
    return figures, per_scan


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 2) for key, value in figures.items()}


def format_rounds(evaluation: Figures) -> str:
    """The per-stage table (percent), like the paper's Table 4."""
    lines = [f"{'':<10}{'AP':>7}{'AP50':>7}{'AP25':>7}"]
    for name, figures in evaluation.items():
        lines.append(f"{name:<10}{figures['AP']:7.1f}{figures['AP50']:7.1f}{figures['AP25']:7.1f}")
    return "\n".join(lines)


def format_scans(per_scan: dict[str, Figures], most: int = 20) -> str:
    """AP50 per scan and stage (up to ``most`` scans), then each scan whose last stage is below its pseudo masks."""
    stages = list(next(iter(per_scan.values()), {}))
    width = max([len(name) for name in per_scan] + [4])
    lines = [f"{'AP50':<{width}}" + "".join(f"{stage:>10}" for stage in stages)]
    lines += [f"{name:<{width}}" + "".join(f"{figures[stage]['AP50']:10.1f}" for stage in stages)
              for name, figures in list(per_scan.items())[:most]]
    if len(per_scan) > most:
        lines.append(f"... {len(per_scan) - most} more scans in {SCANS_EVALUATION_FILE}")
    last = stages[-1] if stages else None
    below = [name for name, figures in per_scan.items()  # as shown: a tenth of a point
             if last and round(figures[last]["AP50"], 1) < round(figures["pseudo"]["AP50"], 1)]
    lines.append(f"below their pseudo masks after {last}: " + (", ".join(below) if below else "none"))
    return "\n".join(lines)


@dataclass(frozen=True)
class RerunPlan:
    """What a (re-)run may keep of a run folder, found before anything is written."""

    record: RunRecord  # run.json as this run will write it
    retrain: bool  # scans were added or changed: every round (and what follows) is made again
    rewrite_masks: bool  # another ``output``: every round's masks are written again
    notes: list[str]  # one line each, for the log


def plan_rerun(run_dir: Path, scan_paths: Sequence[Path], options: FitOptions) -> RerunPlan:
    """Compare what this run is asked to do with ``run_dir/run.json`` (module docstring).

    Raises:
        InputError: one line naming what differs, for a re-run that cannot continue the run.
    """
    from unscene3d.io.scan import scan_names
    from unscene3d.pseudo.pipeline import options_record
    from unscene3d.train.configs import config_diff

    saved = read_record(run_dir)
    if saved is None and any(run_dir.glob("round_*")):
        raise InputError(run_dir, f"holds training rounds but no {RUN_FILE} (made by an older unscene3d): what "
                                  "it was made from cannot be checked; choose a new folder")
    names = scan_names(list(scan_paths))
    scans = scan_records(scan_paths, names, None if saved is None else saved.known_digests())
    record = RunRecord("fit", scans, {"pseudo": options_record(options.pseudo), "masks": options.output,
                                      "ranker_self_training": asdict(options.resolved_self_training())},
                       code_version())
    if saved is None:
        _check_no_strays(run_dir, names)
        return RerunPlan(record, retrain=False, rewrite_masks=False, notes=[])
    if saved.command != record.command:
        raise InputError(run_dir, f"holds a run of `unscene3d {saved.command}`, not of fit; choose a new folder")
    if (difference := code_difference(saved.code)) is not None:
        raise InputError(run_dir, f"{difference}; choose a new folder")
    if changed := config_diff(saved.options.get("pseudo", {}), record.options["pseudo"]):
        raise InputError(run_dir, f"the run's pseudo masks were made with other options (differs in: "
                                  f"{', '.join(changed)}); choose a new folder or drop the options")
    added, modified, removed = changed_scans(saved.scans, scans)
    if removed:
        raise InputError(run_dir, f"the run was made from {len(saved.scans)} scans, and {names_phrase(removed)} "
                                  "is not among those given now: give every scan of the run (new ones may be "
                                  "added), or choose a new folder")
    _check_no_strays(run_dir, names)
    notes = []
    if added:
        notes.append(f"{len(added)} new scan(s) ({names_phrase(added)}): every round is trained again on all "
                     f"{len(scans)} scans")
    if modified:
        notes.append(f"{len(modified)} scan(s) changed since the run was made ({names_phrase(modified)}): their "
                     "pseudo masks are made again and every round is trained again")
    ranker_changed = config_diff(saved.options.get("ranker_self_training", {"rounds": 0}),
                                 record.options["ranker_self_training"])
    if ranker_changed:
        notes.append(f"the run's ranker rounds were made with other settings (differs in: {', '.join(ranker_changed)}): "
                     "they and every round after them are made again")
    rewrite = saved.options.get("masks") != options.output
    if rewrite:
        notes.append(f"each round's masks were {saved.options.get('masks')}, now {options.output}: they are "
                     "written again")
    return RerunPlan(record, retrain=bool(added or modified or ranker_changed),
                     rewrite_masks=rewrite, notes=notes)


def _check_no_strays(run_dir: Path, names: Sequence[str]) -> None:
    """Training reads every pseudo-mask file of the run: none may belong to a scan not given."""
    strays = sorted({path.stem for path in (run_dir / PSEUDO_FOLDER).glob("*.npz")} - set(names))
    if strays:
        raise InputError(run_dir / PSEUDO_FOLDER, f"holds pseudo masks of scans not given now ("
                                                  f"{names_phrase(strays)}): give them too, or choose a new folder")


def _apply_plan(run_dir: Path, plan: RerunPlan) -> None:
    """Remove what the plan makes again, then record the run (in this order: a crash in between leaves a
    record that still asks for the removal)."""
    for note in plan.notes:
        log.info("fit: %s", note)
    stale: list[Path] = []
    if plan.retrain:
        stale += sorted(run_dir.glob("round_*")) + [run_dir / RANKER_FOLDER]
    if plan.retrain or plan.rewrite_masks:
        stale += [run_dir / PREDICTIONS_FOLDER, run_dir / EVALUATION_FILE, run_dir / SCANS_EVALUATION_FILE,
                  run_dir / PAGE_FILE]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_record(run_dir, plan.record)


def fit(scans: Sequence[str | Path], run_dir: str | Path, options: FitOptions | None = None,
        shard: Shard | None = None) -> FitResult:
    """Pseudo masks, self-training rounds and every round's masks for ``scans`` into ``run_dir``; with a
    ``shard``, only that shard's pseudo masks (module docstring).

    Raises:
        InputError: bad scans, or a run folder that this run cannot continue (:func:`plan_rerun`).
    """
    from unscene3d.io.scan import expand_scan_paths

    options = options or FitOptions()
    run_dir = Path(run_dir)
    scan_paths = expand_scan_paths(scans)
    config = run_config(run_dir, options.config)  # checks a re-run's configuration before any work
    plan = plan_rerun(run_dir, scan_paths, options)
    pseudo_dir = run_dir / PSEUDO_FOLDER
    known = plan.record.known_digests()
    if shard is not None:
        chosen = shard.select(scan_paths)
        log.info("fit: shard %s: pseudo masks of %d of %d scans -> %s", shard, len(chosen), len(scan_paths),
                 pseudo_dir)
        written = run_pseudo_masks(chosen, pseudo_dir, options.pseudo, workers=options.workers, known=known)
        return FitResult(run_dir, [], {"pseudo": pseudo_dir}, None, None, pseudo_masks=written)
    _apply_plan(run_dir, plan)
    total_steps = sum(round_steps(k, len(scan_paths), config) for k in range(1, options.rounds + 1))
    progress = _Progress(total_steps, len(scan_paths))

    progress.stage(f"pseudo masks of {len(scan_paths)} scan(s) -> {run_dir / PSEUDO_FOLDER}")
    written = run_pseudo_masks(scan_paths, pseudo_dir, options.pseudo, workers=options.workers, known=known)
    folders = {"pseudo": pseudo_dir}
    training_pseudo = pseudo_dir
    self_training = options.resolved_self_training()
    if self_training.rounds:
        progress.stage(f"{self_training.rounds} ranker round(s): the model of objects self-trained on all "
                       f"{len(scan_paths)} scan(s) -> {run_dir / RANKER_FOLDER}")
        ranked = run_ranker_rounds(run_dir, pair_scans(pseudo_dir, scan_paths), options.pseudo.extractors().ranker(),
                                   self_training, workers=options.workers)
        folders.update({f"ranker_{k}": folder for k, folder in enumerate(ranked, 1)})
        training_pseudo = ranked[-1]

    done_before = set(finished_rounds(run_dir))
    for index in range(1, options.rounds + 1):
        if index not in done_before:
            progress.stage(f"self-training round {index} of {options.rounds} ({config.preset} preset, "
                           f"{round_steps(index, len(scan_paths), config)} steps)")
            started = time.perf_counter()
            result = self_train(training_pseudo, scan_paths, run_dir, config, rounds=index, resume=True,
                                device=options.device, threads=options.threads)
            progress.trained(round_steps(index, len(scan_paths), config) if result.rounds else 0,
                             time.perf_counter() - started)
        else:
            progress.steps_done += round_steps(index, len(scan_paths), config)

    progress.stage(f"masks of every round ({options.output}) -> {run_dir / PREDICTIONS_FOLDER}")
    # the scans as given now (a moved scan is found by its new path), evaluated with their own ground truth
    scans_in_memory = load_training_scans(training_pseudo, scan_paths, config.model, load_gt=True)
    for index in range(1, options.rounds + 1):
        folders[f"round_{index}"] = _write_round(run_dir, index, scans_in_memory, config, options.output,
                                                 options.device, training_pseudo)

    evaluated = _evaluate(scans_in_memory, folders, options.gt_dir)
    evaluation, per_scan = evaluated if evaluated is not None else (None, None)
    if evaluation is not None:
        scans = {scene: {stage: _rounded(figures) for stage, figures in stages.items()}
                 for scene, stages in per_scan.items()}
        atomic_write_text(run_dir / SCANS_EVALUATION_FILE, json.dumps({"units": "percent", "scans": scans}, indent=2)
                          + "\n")
        atomic_write_text(run_dir / EVALUATION_FILE, json.dumps({"units": "percent", **evaluation}, indent=2) + "\n")
        log.info("fit: AP of the pseudo masks and of each round (percent):\n%s\nper scan:\n%s",
                 format_rounds(evaluation), format_scans(per_scan))
    page = None
    if options.page:
        from unscene3d.viewer import write_page

        page = run_dir / PAGE_FILE
        write_page([run_dir], page, scan_options=options.pseudo.scan.load_options())
    progress.stage(f"done: {run_dir}" + (f", open {page}" if page else ""))
    return FitResult(run_dir, list(range(1, options.rounds + 1)), folders, evaluation, page, per_scan,
                     pseudo_masks=written)
