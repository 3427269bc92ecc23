"""Segment new scans: with the shipped model of objects (no run needed), or with a self-trained run's model
(geometry alone; colour optional, no frames needed).

Per scan, into the output folder:

- ``<scene>.txt`` + ``pred_mask/<scene>_<i>.txt``: the ScanNet benchmark format (label id 1, the score);
- ``<scene>_instances.txt``: one instance id per vertex (0 = no instance, k = the k-th mask of the
  benchmark file; where masks overlap the higher-scoring one wins);
- ``<scene>_instances.ply``: the mesh (or point cloud) coloured by instance, grey where there is none.

The text files have one line per input point, in file order (a point without coordinates, such as a NaN
row of an organized depth frame, is in no instance); the PLY holds the points with coordinates.

Masks are over segments from the same oversegmentation the pseudo-mask stage uses
(:func:`unscene3d.pseudo.pipeline.segment_scene`: colour-aware, or ScanNet's geometric one without colour):
the ranked candidates of the model of objects (:class:`RankerPredictor`, :mod:`unscene3d.proposals`), or a
self-trained model's masks voted over them (:class:`Predictor`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unscene3d.errors import InputError, about
from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_write_text
from unscene3d.io.benchmark import export_predictions
from unscene3d.scene import Scene
from unscene3d.segments import describe_segments
from unscene3d.visualize import INSTANCES_PLY_SUFFIX, masks_to_labels, write_labels_ply

if TYPE_CHECKING:  # torch and the networks load with a self-trained model only: the model of objects needs
    # neither (importing them costs 2 s and 260 MiB)
    import torch

    from unscene3d.model.mask3d import Mask3D
    from unscene3d.model.segment_model import SegmentModel
    from unscene3d.train.selftrain import SelfTrainConfig

log = logging.getLogger(__name__)


@dataclass
class Predictor:
    """A loaded model and its configuration; call :meth:`predict` per scene."""

    model: Mask3D | SegmentModel
    config: SelfTrainConfig

    @classmethod
    def load(cls, run: str | Path, device: str | torch.device | None = None) -> Predictor:
        """From a run folder (its last finished round), a round folder or a checkpoint."""
        from unscene3d.train.selftrain import load_model

        model, config = load_model(run, device)
        return cls(model, config)

    def predict(self, scene: Scene, segments: np.ndarray | None = None) -> Instances:
        """Instance masks over the scene's vertices; ``segments`` default to :func:`segment_scene`'s."""
        from unscene3d.model.mask3d import predict_scene
        from unscene3d.model.segment_model import SegmentModel, predict_segments, segment_tokens
        from unscene3d.train.selftrain import model_uses_color

        if scene.colors is None and model_uses_color(self.config):
            log.warning("%s has no colours but the model was trained with colour: its colour input is zero, "
                        "expect weaker masks (a model trained with `train --no-color` uses geometry only)",
                        scene.source or scene.name)
        if segments is None:
            from unscene3d.pseudo.pipeline import segment_scene

            segments = segment_scene(scene).labels
        if isinstance(self.model, SegmentModel):
            segments = np.unique(np.asarray(segments), return_inverse=True)[1].reshape(-1)  # any ids -> 0..S-1
            tokens = segment_tokens(describe_segments(scene, segments, int(segments.max()) + 1 if len(segments) else 0))
            return predict_segments(self.model, tokens, segments, self.config.postprocess)
        return predict_scene(self.model, scene, segments, self.config.postprocess)


def write_instances(out_dir: str | Path, scene: Scene, prediction: Instances) -> Path:
    """Write the benchmark files, the per-vertex instance ids and the coloured PLY; return the txt."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = masks_to_labels(prediction.masks, prediction.scores)
    write_labels_ply(out_dir / f"{scene.name}{INSTANCES_PLY_SUFFIX}", scene, labels)
    per_point = scene.to_input(labels + 1, 0)
    atomic_write_text(out_dir / f"{scene.name}_instances.txt", "".join(f"{v}\n" for v in per_point.tolist()))
    return export_predictions(out_dir, scene.name, prediction.to_input(scene).masks, prediction.scores)


class RankerPredictor:
    """The model of objects (:mod:`unscene3d.proposals`): a scan's candidate masks ranked by the ranker file
    ``ranker`` (None: the one shipped with the package), loaded once."""

    def __init__(self, ranker: str | Path | None = None) -> None:
        from unscene3d.proposals.ranker import load_ranker

        self.ranker = load_ranker(ranker)

    def predict(self, scene: Scene) -> Instances:
        """Ranked instance masks over the scene's vertices, best first."""
        from unscene3d.proposals.ranker import rank_scan

        segmentation, _, ranked = rank_scan(scene, self.ranker)
        return ranked.instances.over(segmentation.labels)


def is_model_path(path: str | Path) -> bool:
    """Whether ``path``, given where a scan is expected, names a model instead: a checkpoint file or folder,
    a round or run folder, or a folder without any scan in it (it then fails as a run, which says why)."""
    from unscene3d.io.scan import expand_scan_paths

    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".safetensors"
    if not path.is_dir():
        return False
    if any((path / name).exists() for name in ("checkpoint", "state.json", "run.json", "done.json")):
        return True
    if any(path.glob("round_*")):
        return True
    try:
        expand_scan_paths([path])
    except InputError:
        return True
    return False


def predict_scans(
    run: str | Path | None,
    scans: Sequence[str | Path],
    out_dir: str | Path,
    *,
    ranker: str | Path | None = None,
    device: str | torch.device | None = None,
    up: str | None = None,
    scale: float | None = None,
    kind: str = "auto",
) -> list[Path]:
    """Load the model once and segment every scan (``expand_scan_paths`` rules; ``up``/``scale``/``kind`` as in
    :func:`~unscene3d.io.scan.load_scan`); returns the benchmark txts. The model is the ``run``'s (a run folder,
    round folder or checkpoint), or with ``run`` None the model of objects (``ranker`` file, default the
    shipped one)."""
    from unscene3d.io.scan import expand_scan_paths, load_scan
    from unscene3d.progress import progress_log

    predictor = RankerPredictor(ranker) if run is None else Predictor.load(run, device)
    written = []
    for scan in progress_log(expand_scan_paths(scans), "predict"):
        scene = load_scan(scan, load_frames=False, up=up, scale=scale, kind=kind)
        with about(scan):
            prediction = predictor.predict(scene)
        written.append(write_instances(out_dir, scene, prediction))
        log.info("%s: %d instances", scene.name, len(prediction.scores))
    return written
