"""The Scene container that every stage reads: one scan's geometry, optional frames and ground truth."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from unscene3d.io.images import read_color_image, read_depth_image

if TYPE_CHECKING:
    from unscene3d.profile import ScanProfile

T = TypeVar("T")


@dataclass
class Frame:
    """One posed camera frame.

    ``pose`` is camera-to-world (4x4) in the mesh's coordinates; ``intrinsic`` is the 3x3 colour camera
    matrix. Images are either held in memory (synthetic frames) or read lazily from their paths.
    Depth is in metres, 0 where unknown.
    """

    pose: np.ndarray
    intrinsic: np.ndarray
    color_path: Path | None = None
    depth_path: Path | None = None
    depth_intrinsic: np.ndarray | None = None
    color: np.ndarray | None = None
    depth: np.ndarray | None = None
    name: str = ""

    def color_image(self) -> np.ndarray:
        """The colour image as an (H, W, 3) uint8 array."""
        if self.color is not None:
            return self.color
        if self.color_path is None:
            raise ValueError(f"frame {self.name!r} has no colour image")
        return read_color_image(self.color_path)

    def depth_image(self) -> np.ndarray | None:
        """The depth image in metres as an (H, W) float32 array, or None when the frame has no depth."""
        if self.depth is not None:
            return self.depth
        if self.depth_path is None:
            return None
        return read_depth_image(self.depth_path)


@dataclass
class Scene:
    """A scan: a triangle mesh (or a point cloud when ``faces`` is empty) with per-vertex attributes.

    Attributes:
        name: scene id, e.g. ``scene0000_00``; used for output file names.
        vertices: (N, 3) float64 positions.
        faces: (F, 3) int64 vertex indices; (0, 3) for a point cloud.
        colors: (N, 3) uint8 RGB, or None when the scan has no colour.
        normals: (N, 3) float32, or None (computed on demand by the stages that need them).
        frames: posed colour (+ depth) frames, possibly empty.
        gt: (N,) int64 ground truth in the ScanNet benchmark convention ``label * 1000 + instance``
            (instance 0 = no instance), or None.
        source: where the scan was read from, for error messages.
        sensor: (3,) position of the sensor that saw every point (a single depth frame), or None.
        input_index: (N,) int64 position of each vertex in the file it was read from, or None when the
            vertices are the file's in order; points that carry nothing (NaN rows of an organized cloud) are
            not vertices, and outputs are written back per input point with :meth:`to_input`.
        num_input_points: how many points the file holds (None: ``N``).
        profile: what :func:`~unscene3d.io.scan.load_scan` inferred about the scan (units, up axis, kind,
            colour) and how it turned it into room metres, z up; None for a scene made in code (a room, as is).
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    normals: np.ndarray | None = None
    frames: list[Frame] = field(default_factory=list)
    gt: np.ndarray | None = None
    source: Path | None = None
    sensor: np.ndarray | None = None
    input_index: np.ndarray | None = None
    num_input_points: int | None = None
    profile: ScanProfile | None = None
    # what derived() computed, with the arrays it was computed from
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.vertices)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be (N, 3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {self.faces.shape}")
        for attr in ("colors", "normals"):
            value = getattr(self, attr)
            if value is not None and value.shape != (n, 3):
                raise ValueError(f"{attr} must be ({n}, 3), got {value.shape}")
        if self.gt is not None and self.gt.shape != (n,):
            raise ValueError(f"gt must have one value per vertex ({n}), got {self.gt.shape}")
        if self.input_index is not None:
            total = self.num_input_points
            index = self.input_index
            if index.shape != (n,) or total is None or (n and not 0 <= index.min() <= index.max() < total):
                raise ValueError(f"input_index must be ({n},) positions below num_input_points ({total})")

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, run once per scan: a value that depends only on the scan's ``vertices``, ``faces``
        and ``sensor``, which several stages read (a point cloud's neighbour graph and normals). ``key`` names
        the value and its parameters. Replacing one of those arrays makes it run again (write new arrays,
        never into them); the value is shared, so its readers must not write into it either."""
        inputs = (self.vertices, self.faces, self.sensor)
        entry = self._derived.get(key)
        if entry is None or any(held is not now for held, now in zip(entry[0], inputs)):
            entry = self._derived[key] = (inputs, compute())
        return entry[1]

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def length_scale(self) -> float:
        """Metres of the scan per working unit: 1 for a room, more than that for an enlarged tabletop."""
        return 1.0 if self.profile is None else self.profile.length_scale

    @property
    def has_faces(self) -> bool:
        return len(self.faces) > 0

    @property
    def input_size(self) -> int:
        """Points in the scan's file: the length of every per-point output file."""
        return self.num_vertices if self.input_index is None else int(self.num_input_points)

    def from_input(self, values: np.ndarray) -> np.ndarray:
        """Per-input-point values (last axis has :attr:`input_size` entries) for the vertices: the inverse of
        :meth:`to_input`."""
        values = np.asarray(values)
        return values if self.input_index is None else values[..., self.input_index]

    def to_input(self, values: np.ndarray, fill: object = 0) -> np.ndarray:
        """Per-vertex values (last axis has N entries) laid out per input point; ``fill`` where no vertex."""
        values = np.asarray(values)
        if values.shape[-1] != self.num_vertices:
            raise ValueError(f"values must end in an axis of {self.num_vertices}, got shape {values.shape}")
        if self.input_index is None:
            return values
        out = np.full(values.shape[:-1] + (self.input_size,), fill, dtype=values.dtype)
        out[..., self.input_index] = values
        return out
