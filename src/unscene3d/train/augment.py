"""Random augmentations that make the two views of a scan for contrastive pretraining.

All randomness comes from an explicit ``numpy.random.Generator`` so a training step is a pure function
of (seed, step, rank) -- which is what makes ``--resume`` exact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.ndimage import gaussian_filter

from unscene3d.voxelize import InputChannels


@dataclass(frozen=True)
class AugmentConfig:
    """``crop_size`` metres (square in x/y, full height; 0 = whole scan); ``elastic`` (granularity, magnitude)
    pairs in metres; colour values are in the network's ``rgb/255 - 0.5`` units."""

    crop_size: float = 0.0
    min_crop_points: int = 500
    rotate: bool = True  # a random rotation about the vertical axis
    scale_range: tuple[float, float] = (0.9, 1.1)
    flip_probability: float = 0.5
    elastic: tuple[tuple[float, float], ...] = ((0.2, 0.4), (0.8, 1.6))
    color_shift: float = 0.1
    color_contrast: float = 0.2
    color_noise: float = 0.02

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        values = dict(data)
        values["scale_range"] = tuple(values.get("scale_range", cls.scale_range))
        values["elastic"] = tuple(tuple(pair) for pair in values.get("elastic", cls.elastic))
        return cls(**values)


def random_crop(points: np.ndarray, rng: np.random.Generator, size: float, min_points: int) -> np.ndarray:
    """Indices of the points in a ``size`` x ``size`` (x, y) box centred on a random point.

    Retries a few centres when the box catches fewer than ``min_points``; falls back to the best box.
    """
    if size <= 0 or len(points) == 0:
        return np.arange(len(points))
    best = np.zeros(0, dtype=np.int64)
    for _ in range(10):
        centre = points[rng.integers(len(points)), :2]
        inside = np.flatnonzero(np.all(np.abs(points[:, :2] - centre) <= size / 2, axis=1))
        if len(inside) > len(best):
            best = inside
        if len(best) >= min_points:
            break
    return best


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def elastic_distortion(
    points: np.ndarray, rng: np.random.Generator, granularity: float, magnitude: float
) -> np.ndarray:
    """Displace points by smooth random noise: a coarse noise grid (spacing ``granularity``), blurred,
    interpolated at the points, scaled by ``magnitude`` (as in the MinkowskiEngine / Mask3D augmentation)."""
    low = points.min(axis=0) - 2 * granularity
    shape = np.floor((points.max(axis=0) - low) / granularity).astype(int) + 4
    noise = rng.standard_normal((*shape, 3)).astype(np.float64)
    for axis in range(3):
        noise[..., axis] = gaussian_filter(noise[..., axis], sigma=1.0, mode="nearest")
    axes = [low[d] + granularity * np.arange(shape[d]) for d in range(3)]
    interpolate = RegularGridInterpolator(axes, noise, bounds_error=False, fill_value=0.0)
    return points + interpolate(points) * magnitude


def augment_view(
    points: np.ndarray, features: np.ndarray, rng: np.random.Generator, config: AugmentConfig,
    channels: InputChannels = InputChannels(),
) -> tuple[np.ndarray, np.ndarray]:
    """One random view: rotation about z, scaling, flips, elastic distortion; colour jitter.

    ``features`` are the network inputs laid out as ``channels`` says: colour (``rgb/255 - 0.5``) is
    jittered, normals are rotated and flipped with the points, other columns are kept.
    """
    centred = points - points.mean(axis=0)
    rotation = rotation_z(rng.uniform(0.0, 2 * np.pi) if config.rotate else 0.0)
    scale = rng.uniform(*config.scale_range)
    flips = np.where(rng.random(2) < config.flip_probability, -1.0, 1.0)
    flip = np.diag([flips[0], flips[1], 1.0])
    transform = flip @ rotation * scale
    out = centred @ transform.T
    for granularity, magnitude in config.elastic:
        out = elastic_distortion(out, rng, granularity * scale, magnitude * scale)
    features = np.array(features, dtype=np.float32, copy=True)
    contrast = 1.0 + rng.uniform(-config.color_contrast, config.color_contrast)
    shift = rng.uniform(-config.color_shift, config.color_shift, size=3)
    if channels.color is not None:
        rgb = features[:, channels.color]
        noise = rng.normal(0.0, config.color_noise, rgb.shape)
        features[:, channels.color] = np.clip(rgb * contrast + shift + noise, -0.5, 0.5)
    if channels.normals is not None:
        normal_transform = (flip @ rotation).astype(np.float32)
        features[:, channels.normals] = features[:, channels.normals] @ normal_transform.T
    return out, features
