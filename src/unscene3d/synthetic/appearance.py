"""Scan-like appearance: depth-sensor noise on the surface and textured, shaded vertex colours."""

from __future__ import annotations

import numpy as np

from unscene3d.synthetic.planner import Material

# Direction of the light baked into the colours (scans carry the room's shading in their colours).
_LIGHT = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (float64); zero for vertices without faces."""
    p = vertices[faces]
    face_normals = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def wave_field(points: np.ndarray, rng: np.random.Generator, wavelength: tuple[float, float], count: int = 3) -> np.ndarray:
    """A smooth random field in about [-1, 1]: a sum of plane waves in random directions."""
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    k = directions * (2 * np.pi / rng.uniform(*wavelength, size=(count, 1)))
    phases = rng.uniform(0, 2 * np.pi, count)
    return np.sin(points @ k.T + phases).sum(axis=1) / np.sqrt(count)


def add_sensor_noise(vertices: np.ndarray, normals: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Move vertices along their normals: white noise plus a slow waviness, both of scale ``sigma``."""
    if sigma <= 0:
        return vertices.copy()
    offset = sigma * (rng.normal(size=len(vertices)) + 0.7 * wave_field(vertices, rng, (0.5, 1.5)))
    return vertices + normals * offset[:, None]


def _pattern(points: np.ndarray, pattern: str, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-vertex RGB (float) of one material before shading and jitter."""
    n = len(points)
    brightness = 1.0 + 0.05 * wave_field(points, rng, (0.3, 1.0))
    if pattern == "grain":
        axis = np.eye(3)[rng.integers(2)]
        stripes = np.sin(2 * np.pi * (points @ axis) / rng.uniform(0.02, 0.05) + 2.0 * wave_field(points, rng, (0.2, 0.6)))
        brightness = brightness + 0.07 * stripes
    elif pattern == "planks":
        plank_w = rng.uniform(0.12, 0.2)
        plank = np.floor(points[:, 0] / plank_w).astype(np.int64)
        shades = rng.uniform(0.85, 1.15, plank.max() - plank.min() + 1)
        seam = np.abs(points[:, 0] / plank_w - np.round(points[:, 0] / plank_w)) * plank_w < 0.006
        brightness = brightness * shades[plank - plank.min()] * np.where(seam, 0.7, 1.0)
    elif pattern == "blocks":
        cell = rng.uniform(0.06, 0.15)
        keys = np.floor(points / cell).astype(np.int64)
        _, block = np.unique(keys, axis=0, return_inverse=True)
        palette = np.clip(base + rng.normal(0, 60, (block.max() + 1, 3)), 0, 255)
        return palette[block.ravel()] * brightness[:, None]
    return np.broadcast_to(base, (n, 3)) * brightness[:, None]


def vertex_colors(
    vertices: np.ndarray, normals: np.ndarray, material: np.ndarray, materials: list[Material], rng: np.random.Generator
) -> np.ndarray:
    """Textured, shaded, jittered colours (N, 3) uint8 for vertices with the given material ids."""
    colors = np.zeros((len(vertices), 3))
    for index, mat in enumerate(materials):
        mask = material == index
        pattern_rng = np.random.default_rng(rng.integers(2**63))  # same stream whether or not the material is used
        if mask.any():
            colors[mask] = _pattern(vertices[mask], mat.pattern, np.asarray(mat.rgb), pattern_rng)
    shade = 0.8 + 0.2 * np.clip(normals @ _LIGHT, 0.0, 1.0)
    colors = colors * shade[:, None] + rng.normal(0, 4.0, colors.shape)
    return np.clip(np.round(colors), 0, 255).astype(np.uint8)
