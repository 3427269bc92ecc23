"""The folder of per-vertex 3D features that ``unscene3d features3d`` writes and ``pseudo-masks --features3d``
reads instead of running the backbone again (a stage's output is the next stage's input)::

    features3d.json   {"format": "unscene3d features3d", "format_version": 1, "stride": 2, "channels": C,
                       "checkpoint": ...}, written before the first scan
    <scene>.npy       (N, C) float32, one row per vertex of the scan as loaded (the decoder level at ``stride``)

Reading needs numpy only, not the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.io.atomic import atomic_write_text
from unscene3d.scene import Scene

FEATURE_STRIDE = 2
MANIFEST = "features3d.json"
FORMAT = "unscene3d features3d"
FORMAT_VERSION = 1


def write_manifest(out_dir: str | Path, checkpoint: str | Path, channels: int) -> Path:
    """Write ``<out_dir>/features3d.json`` for features of ``channels`` channels made with ``checkpoint``."""
    path = Path(out_dir) / MANIFEST
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "stride": FEATURE_STRIDE, "channels": channels,
                "checkpoint": str(checkpoint)}
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return path


@dataclass(frozen=True)
class FeatureFolder:
    """A folder of 3D features (module docstring) whose description :meth:`open` checked; :meth:`read` gives a
    scan's features, :meth:`check` looks at the file's header only."""

    path: Path
    channels: int

    @classmethod
    def open(cls, path: str | Path) -> FeatureFolder:
        """Raises InputError: no such folder, no description in it, or one of another format or version."""
        path = Path(path)
        manifest = path / MANIFEST
        if not path.is_dir():
            raise InputError(path, "no such folder of 3D features")
        if not manifest.is_file():
            raise InputError(path, f"has no {MANIFEST}: not a folder written by `unscene3d features3d` (write the "
                                   "features again with it)")
        try:
            data = json.loads(manifest.read_bytes())
            version, channels = data["format_version"], data["channels"]
            is_ours = data["format"] == FORMAT and data["stride"] == FEATURE_STRIDE
        except (ValueError, TypeError, KeyError) as error:
            raise InputError(manifest, f"not a features3d description: {error!r}") from None
        if not is_ours or version != FORMAT_VERSION:
            raise InputError(manifest, f"describes format {data['format']!r} version {version!r} at stride "
                                       f"{data['stride']!r}; this unscene3d reads {FORMAT!r} version "
                                       f"{FORMAT_VERSION} at stride {FEATURE_STRIDE}: write the features again with "
                                       "`unscene3d features3d`")
        if type(channels) is not int or channels < 1:
            raise InputError(manifest, f"channels must be a positive integer, got {channels!r}")
        return cls(path, channels)

    def check(self, scene: Scene) -> np.ndarray:
        """The scan's features, mapped from the file and checked for their shape only (fast).

        Raises:
            InputError: no file for the scan, not a .npy of float features, or rows or channels that do not
                match the scan and the folder.
        """
        path = self.path / f"{scene.name}.npy"
        if not path.is_file():
            raise InputError(path, f"not found: no 3D features for scan {scene.name} in this features3d folder")
        try:
            features = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):  # numpy's own words for a text file speak of pickles: misleading here
            raise InputError(path, "not a .npy file of features (unreadable or truncated)") from None
        expected = (scene.num_vertices, self.channels)
        if features.shape != expected or not np.issubdtype(features.dtype, np.floating):
            raise InputError(path, f"holds {features.dtype} features of shape {features.shape}, but scan {scene.name} "
                                   f"needs {expected} (one row per vertex): features of another scan?")
        return features

    def read(self, scene: Scene) -> np.ndarray:
        """(N, C) float32 features of the scan (:meth:`check`, and every value finite)."""
        features = np.asarray(self.check(scene), dtype=np.float32)
        if not np.isfinite(features).all():
            raise InputError(self.path / f"{scene.name}.npy", "holds values that are not finite")
        return features
