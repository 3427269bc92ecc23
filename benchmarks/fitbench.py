"""Shared steps of the self-training benchmarks: scoring pseudo masks and each round of a ``fit`` run."""

from __future__ import annotations

from pathlib import Path

from unscene3d.evaluation import evaluate_scenes
from unscene3d.fit import round_masks, scan_ground_truth
from unscene3d.instances import Instances
from unscene3d.pseudo.pipeline import read_pseudo_masks
from unscene3d.train.selftrain import build_model, load_model, round_dir


def figures(items) -> tuple[float, float, float]:
    """AP / AP50 / AP25 in percent of (scene, instances, gt) items."""
    overall = evaluate_scenes(items).overall
    return overall["AP"], overall["AP50"], overall["AP25"]


def score_round(run: Path, index: int, scans, pseudo_dir: Path, config, output: str):
    """A round's figures; round 0 is the control: an untrained model of the same configuration."""
    model = build_model(config, seed=config.seed).eval() if index == 0 else load_model(round_dir(run, index))[0]
    items = []
    for scan in scans:
        pseudo_scores = read_pseudo_masks(pseudo_dir / f"{scan.name}.npz").instances.scores
        prediction = round_masks(model, scan, config, output, pseudo_scores)
        items.append((scan.name, prediction.to_input(scan.scene),
                      scan_ground_truth(scan, None)))
    return figures(items)


def pseudo_figures(scans, pseudo_dir: Path) -> tuple[float, float, float]:
    """The pseudo masks' own AP / AP50 / AP25 (percent)."""
    scores = {s.name: read_pseudo_masks(pseudo_dir / f"{s.name}.npz").instances.scores for s in scans}
    return figures([(s.name, Instances(s.pseudo_masks, scores[s.name]).over(s.segments).to_input(s.scene),
                     scan_ground_truth(s, None)) for s in scans])
