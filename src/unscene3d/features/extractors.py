"""Learned per-vertex features of many scans with each model loaded once (load once, apply many times).

Make one :class:`FeatureExtractors` per worker process and pass it to every scan that worker handles: the
3D backbone, the 2D encoder and the candidate ranker load on their first use and stay loaded. 3D features come from the backbone,
or from a folder written by ``unscene3d features3d`` (:mod:`unscene3d.features.folder`) without the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unscene3d.errors import InputError
from unscene3d.features.folder import FeatureFolder
from unscene3d.scene import Scene

if TYPE_CHECKING:
    from unscene3d.features.features2d import ImageEncoder
    from unscene3d.model.backbone import Res16UNet
    from unscene3d.proposals.ranker import Ranker


class FeatureExtractors:
    """The 3D backbone of ``checkpoint`` or the features of a ``features3d`` folder (not both), and the 2D
    ``encoder`` (a hub id or a folder) run on every ``frame_step``-th frame, and the candidate ``ranker`` (a
    file; None: the one shipped with the package); all optional, on ``device``.

    Raises:
        InputError: both a checkpoint and a features folder, or a features folder that is not one.
    """

    def __init__(self, *, checkpoint: str | Path | None = None, features3d: str | Path | None = None,
                 encoder: str | Path | None = None, device: str | None = None, frame_step: int = 20,
                 ranker: str | Path | None = None) -> None:
        if checkpoint is not None and features3d is not None:
            raise InputError(None, "3D features come from a backbone checkpoint or a features3d folder, not both")
        self.checkpoint = checkpoint
        self.folder = None if features3d is None else FeatureFolder.open(features3d)
        self.encoder = encoder
        self.device = device
        self.frame_step = frame_step
        self._backbone: Res16UNet | None = None
        self._image_encoder: ImageEncoder | None = None
        self.ranker_path = ranker
        self._ranker: Ranker | None = None

    def ranker(self) -> Ranker:
        """The candidate ranker (:mod:`unscene3d.proposals.ranker`), loaded on first use."""
        if self._ranker is None:
            from unscene3d.proposals.ranker import load_ranker

            self._ranker = load_ranker(self.ranker_path)
        return self._ranker

    def vertex_3d(self, scene: Scene) -> np.ndarray:
        """(N, C) float32 3D features per vertex: read from the folder, else computed by the backbone."""
        if self.folder is not None:
            return self.folder.read(scene)
        from unscene3d.features.features3d import extract_vertex_features, load_backbone

        if self.checkpoint is None:
            raise InputError(None, "3D features need a backbone checkpoint or a features3d folder")
        if self._backbone is None:
            self._backbone, _ = load_backbone(self.checkpoint, self.device)
        return extract_vertex_features(self._backbone, scene, device=self.device)

    def vertex_2d(self, scene: Scene) -> np.ndarray:
        """(N, C) float32 image-encoder features back-projected to the vertices (zeros where unseen)."""
        from unscene3d.features.features2d import encoder_vertex_features, load_encoder

        if self.encoder is None:
            raise InputError(None, "2D features need an image encoder")
        if self._image_encoder is None:
            self._image_encoder = load_encoder(self.encoder, device=self.device)
        return encoder_vertex_features(scene, self._image_encoder, frame_step=self.frame_step)
