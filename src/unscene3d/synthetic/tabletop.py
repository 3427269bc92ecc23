"""A generated tabletop: a depth-sensor-like point cloud of boxes and cylinders on a table, with ground truth.

The counterpart of the generated rooms at a Kinect frame's scale (mOSD: about 1 m across, objects of 5-30 cm):
a table top of about 1.0 x 0.7 m at z = 0 (metres, z up) and 3-5 objects standing on it, their tops and sides
sampled every few millimetres with a little noise (the hidden bottoms are not). Ground truth follows mOSD's
export: each object ``39 * 1000 + instance`` (otherfurniture), the table void (0).
"""

from __future__ import annotations

import numpy as np

from unscene3d.scene import Scene

OBJECT_LABEL = 39
_SPACING = 0.004
_NOISE = 0.0005
_TABLE = (1.0, 0.7)


def _rectangle(size_u: float, size_v: float, rng: np.random.Generator) -> np.ndarray:
    """(M, 2) points sampled about every ``_SPACING`` over a rectangle centred at the origin."""
    count = max(int(size_u * size_v / _SPACING**2), 4)
    return (rng.random((count, 2)) - 0.5) * [size_u, size_v]


def _box_points(size: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sx, sy, sz = size
    top = _rectangle(sx, sy, rng)
    top = np.column_stack([top, np.full(len(top), sz)])
    sides = []
    for axis, (length, half) in enumerate(((sy, sx / 2), (sx, sy / 2))):
        for sign in (-1.0, 1.0):
            uv = _rectangle(length, sz, rng) + [0.0, sz / 2]
            side = np.column_stack([np.full(len(uv), sign * half), uv[:, 0], uv[:, 1]])
            sides.append(side if axis == 0 else side[:, [1, 0, 2]])
    return np.concatenate([top, *sides])


def _cylinder_points(radius: float, height: float, rng: np.random.Generator) -> np.ndarray:
    disk = int(np.pi * radius**2 / _SPACING**2)
    r, angle = radius * np.sqrt(rng.random(disk)), rng.random(disk) * 2 * np.pi
    top = np.column_stack([r * np.cos(angle), r * np.sin(angle), np.full(disk, height)])
    wall = int(2 * np.pi * radius * height / _SPACING**2)
    angle, z = rng.random(wall) * 2 * np.pi, rng.random(wall) * height
    side = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), z])
    return np.concatenate([top, side])


def make_tabletop_scene(seed: int = 0) -> Scene:
    """A tabletop point cloud (module docstring); the same seed gives identical arrays."""
    rng = np.random.default_rng(seed)
    table = _rectangle(*_TABLE, rng)
    table = np.column_stack([table, np.zeros(len(table))])
    parts, labels = [table], [np.zeros(len(table), np.int64)]
    colours = [np.tile(rng.integers(60, 200, 3), (len(table), 1))]
    placed: list[tuple[np.ndarray, float]] = []
    for instance in range(1, int(rng.integers(3, 6)) + 1):
        points = _box_points(rng.uniform([0.06, 0.06, 0.06], [0.25, 0.2, 0.25]), rng) if rng.random() < 0.5 else \
            _cylinder_points(rng.uniform(0.03, 0.07), rng.uniform(0.08, 0.22), rng)
        yaw = rng.random() * np.pi
        points = points @ np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]]).T
        reach = float(np.linalg.norm(points[:, :2], axis=1).max())
        for _ in range(100):  # rejection sampling of a free spot on the table
            centre = (rng.random(2) - 0.5) * (np.array(_TABLE) - 2 * reach - 0.04)
            if all(np.linalg.norm(centre - other) > reach + other_reach + 0.03 for other, other_reach in placed):
                break
        else:
            continue
        placed.append((centre, reach))
        parts.append(points + [centre[0], centre[1], 0.0])
        labels.append(np.full(len(points), OBJECT_LABEL * 1000 + instance, np.int64))
        colours.append(np.tile(rng.integers(0, 256, 3), (len(points), 1)))
    vertices = np.concatenate(parts)
    vertices += rng.normal(scale=_NOISE, size=vertices.shape)
    return Scene(name=f"tabletop{seed:04d}", vertices=vertices, faces=np.empty((0, 3), np.int64),
                 colors=np.concatenate(colours).astype(np.uint8), gt=np.concatenate(labels))
