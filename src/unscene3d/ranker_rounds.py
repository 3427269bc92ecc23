"""``fit``'s ranker rounds: the model of objects self-trained on all of a run's scans together.

After the pseudo masks (the shipped ranker's masks), the ranker is fine-tuned round by round on the candidates
of every scan of the run (:mod:`unscene3d.proposals.self_training`), and each round's ranker ranks every scan
again. The last round's masks are then the pseudo masks the segment model's rounds train on. Run folder::

    RUN_DIR/ranker/candidates/<scene>.npz   each scan's candidates and their features (made once)
    RUN_DIR/ranker/replay/                  the generated rooms replayed in every round (made once)
    RUN_DIR/ranker/round_k.safetensors      round k's ranker (``--ranker`` of predict and pseudo-masks)
    RUN_DIR/ranker/round_k/                 its masks of every scan, in the pseudo-mask format

Every file is written atomically and skipped when present, so an interrupted run resumes; a run whose scans
change starts this stage again (:func:`unscene3d.fit.plan_rerun`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_output
from unscene3d.progress import format_duration
from unscene3d.proposals.ranker import Ranker, load_ranker
from unscene3d.proposals.self_training import SelfTrainingConfig, replay_examples, self_train_round
from unscene3d.proposals.training import read_examples, scan_candidates, select_examples
from unscene3d.pseudo.pipeline import PseudoMasks, read_pseudo_masks, write_pseudo_masks
from unscene3d.scene import Scene

log = logging.getLogger(__name__)

RANKER_FOLDER = "ranker"


def ranker_round_file(run_dir: Path, index: int) -> Path:
    return run_dir / RANKER_FOLDER / f"round_{index}.safetensors"


def ranker_round_masks(run_dir: Path, index: int) -> Path:
    return run_dir / RANKER_FOLDER / f"round_{index}"


def _load_pseudo_scan(npz: Path, scan: Path) -> tuple[PseudoMasks, Scene]:
    """A scan's pseudo masks and the scan, read as the pseudo-mask stage read it."""
    from unscene3d.io.scan import load_scan

    pseudo = read_pseudo_masks(npz)
    return pseudo, load_scan(scan, load_frames=False, **pseudo.params.get("scan_options", {}))


def _candidates(run_dir: Path, pairs: Sequence[tuple[Path, Path]], ranker: Ranker) -> list[dict[str, np.ndarray]]:
    """Every scan's candidates, made once (progress with rate and ETA)."""
    folder = run_dir / RANKER_FOLDER / "candidates"
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(npz, scan) for npz, scan in pairs if not (folder / npz.name).is_file()]
    start = time.perf_counter()
    for done, (npz, scan) in enumerate(todo, 1):
        _, scene = _load_pseudo_scan(npz, scan)
        examples = scan_candidates(scene, ranker.proposals)
        with atomic_output(folder / npz.name) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **examples)
        elapsed = time.perf_counter() - start
        log.info("ranker rounds: candidates %d/%d (%s, %d); %.2f scans/min, ETA %s", done, len(todo), npz.stem,
                 len(examples["features"]), done / elapsed * 60, format_duration(elapsed / done * (len(todo) - done)))
    return [read_examples(folder / npz.name) for npz, _ in pairs]


def _write_masks(run_dir: Path, rankers: Sequence[Ranker], pairs: Sequence[tuple[Path, Path]],
                 scans: Sequence[dict[str, np.ndarray]]) -> None:
    """Each round's masks of each scan; the scan is read once for all rounds."""
    for (npz, scan_path), examples in zip(pairs, scans):
        targets = [ranker_round_masks(run_dir, k) / npz.name for k in range(1, len(rankers) + 1)]
        if all(path.is_file() for path in targets):
            continue
        pseudo, scene = _load_pseudo_scan(npz, scan_path)
        for index, (ranker, target) in enumerate(zip(rankers, targets), 1):
            if target.is_file():
                continue
            masks, scores, kept = select_examples(ranker, examples)
            params = {**pseudo.params, "ranker": {**pseudo.params.get("ranker", {}), "file": str(ranker.path),
                                                  "self_trained_round": index}}
            ranked = PseudoMasks(pseudo.scene_name, examples["labels"].astype(np.int64),
                                 Instances(masks[kept], scores[kept]), params, pseudo.scan_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_pseudo_masks(target.parent, ranked, scene)


def run_ranker_rounds(run_dir: Path, pairs: Sequence[tuple[Path, Path]], start: Ranker,
                      config: SelfTrainingConfig, workers: int = 1) -> list[Path]:
    """Self-train ``start`` for ``config.rounds`` rounds on the scans of ``pairs`` (their pseudo-mask file and scan)
    and write every round's masks (module docstring); returns the rounds' mask folders."""
    rounds = config.rounds
    scans = _candidates(run_dir, pairs, start)
    rankers: list[Ranker] = []
    replay = None
    ranker = start
    for index in range(1, rounds + 1):
        path = ranker_round_file(run_dir, index)
        if path.is_file():
            ranker = load_ranker(path)
        else:
            if replay is None:
                replay = replay_examples(start, config, run_dir / RANKER_FOLDER / "replay", workers)
            started = time.perf_counter()
            ranker = self_train_round(ranker, scans, replay, config)
            ranker.save(path)
            ranker = load_ranker(path)
            log.info("ranker round %d/%d: %s confident masks per scan, %.0fs", index, rounds,
                     "/".join(map(str, ranker.info["self_trained"]["confident_masks"])),
                     time.perf_counter() - started)
        rankers.append(ranker)
    _write_masks(run_dir, rankers, pairs, scans)
    return [ranker_round_masks(run_dir, k) for k in range(1, rounds + 1)]
