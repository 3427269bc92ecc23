"""Irregularly triangulated surface primitives: rectangles, boxes, cylinders and wavy panels.

Every primitive is built in its own local frame (centred at the origin, z up) at a target vertex
spacing ``h``. Interior grid nodes are jittered and each grid cell gets a random diagonal, so the
triangulation is irregular like a decimated scan mesh; nodes on a patch's boundary stay on a regular
subdivision so that neighbouring patches share them exactly and can be welded by position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

# Jitter of interior grid nodes, as a fraction of the grid step: enough for an irregular mesh,
# small enough that no triangle folds over or degenerates (0.25 would let a node reach the diagonal).
GRID_JITTER = 0.2

# Box faces by name: (axis, sign). A part leaves some faces open where it rests on or leans against
# a support (the hidden side of a real scan); those openings are where it is welded.
BOX_FACES = ("-x", "+x", "-y", "+y", "-z", "+z")


@dataclass
class LocalMesh:
    """A primitive's triangles in its local frame; ``openings`` maps an open face name to the
    indices of the vertices on its rim (the ring that is welded onto a support)."""

    vertices: np.ndarray
    faces: np.ndarray
    openings: dict[str, np.ndarray]


def _steps(length: float, h: float) -> int:
    return max(1, int(np.ceil(length / h - 1e-9)))


def grid_patch(
    origin: np.ndarray, u: np.ndarray, v: np.ndarray, h: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate the parallelogram ``origin + s*u + t*v`` (s, t in [0, 1]); normals along u x v."""
    nu, nv = _steps(float(np.linalg.norm(u)), h), _steps(float(np.linalg.norm(v)), h)
    s = np.broadcast_to(np.arange(nu + 1, dtype=np.float64)[:, None] / nu, (nu + 1, nv + 1)).copy()
    t = np.broadcast_to(np.arange(nv + 1, dtype=np.float64)[None, :] / nv, (nu + 1, nv + 1)).copy()
    # Interior nodes move in both directions; boundary nodes keep their regular place.
    s[1:-1, 1:-1] += rng.uniform(-GRID_JITTER, GRID_JITTER, (nu - 1, nv - 1)) / nu
    t[1:-1, 1:-1] += rng.uniform(-GRID_JITTER, GRID_JITTER, (nu - 1, nv - 1)) / nv
    vertices = origin + s.reshape(-1, 1) * u + t.reshape(-1, 1) * v
    return vertices, _grid_faces(nu, nv, rng, wrap=False)


def _grid_faces(nu: int, nv: int, rng: np.random.Generator, *, wrap: bool) -> np.ndarray:
    """Two triangles per cell of a (nu+1) x (nv+1) node grid (nu x (nv+1) when wrapped in u),
    each cell split along a random diagonal; winding gives normals along (du x dv)."""
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    i, j = i.ravel(), j.ravel()
    i1 = (i + 1) % nu if wrap else i + 1
    a, b = i * (nv + 1) + j, i1 * (nv + 1) + j
    c, d = i1 * (nv + 1) + j + 1, i * (nv + 1) + j + 1
    flip = rng.random(len(a)) < 0.5
    first = np.where(flip[:, None], np.stack([a, b, d], 1), np.stack([a, b, c], 1))
    second = np.where(flip[:, None], np.stack([b, c, d], 1), np.stack([a, c, d], 1))
    return np.concatenate([first, second]).astype(np.int64)


def weld_coincident(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge vertices at the same position (to 1 micrometre); returns (vertices, faces, first_index)
    where ``first_index[k]`` is the input vertex that the output vertex k came from."""
    keys = np.round(vertices * 1e6).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep vertices in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return vertices[first[order]], rank[inverse.ravel()][faces], first[order]


def box(size: tuple[float, float, float], h: float, rng: np.random.Generator, open_faces=()) -> LocalMesh:
    """A box centred at the origin with outward normals, without the faces named in ``open_faces``."""
    half = np.asarray(size, dtype=np.float64) / 2
    pieces_v, pieces_f, count = [], [], 0
    for name in BOX_FACES:
        if name in open_faces:
            continue
        axis, sign = "xyz".index(name[1]), 1.0 if name[0] == "+" else -1.0
        a, b = (axis + 1) % 3, (axis + 2) % 3  # (a, b, axis) is a right-handed cycle
        origin = np.zeros(3)
        origin[axis] = sign * half[axis]
        u, v = np.zeros(3), np.zeros(3)
        u[a], v[b] = 2 * half[a], 2 * half[b]
        origin[a], origin[b] = -half[a], -half[b]
        if sign < 0:  # swap the spanning vectors so the normal points outwards
            u, v = v, u
        verts, faces = grid_patch(origin, u, v, h, rng)
        pieces_v.append(verts)
        pieces_f.append(faces + count)
        count += len(verts)
    vertices, faces, _ = weld_coincident(np.concatenate(pieces_v), np.concatenate(pieces_f))
    openings = {}
    for name in open_faces:
        axis, sign = "xyz".index(name[1]), 1.0 if name[0] == "+" else -1.0
        openings[name] = np.flatnonzero(np.abs(vertices[:, axis] - sign * half[axis]) < 1e-9)
    return LocalMesh(vertices, faces, openings)


def _disk(radius: float, z: float, n_rim: int, h: float, rng: np.random.Generator, up: bool) -> tuple:
    """A disk cap at height z whose rim nodes match a cylinder side with ``n_rim`` columns."""
    angle = 2 * np.pi * np.arange(n_rim) / n_rim
    rim = radius * np.stack([np.cos(angle), np.sin(angle)], 1)
    ticks = np.arange(-radius, radius + 1e-12, h)
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    inner = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-GRID_JITTER, GRID_JITTER, (gx.size, 2)) * h
    inner = inner[np.linalg.norm(inner, axis=1) < radius - 0.5 * h]
    points = np.concatenate([rim, inner])
    triangles = Delaunay(points).simplices.astype(np.int64)
    p = points[triangles]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    signed_area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    flip = (signed_area < 0) if up else (signed_area > 0)
    triangles[flip] = triangles[flip][:, ::-1]
    return np.column_stack([points, np.full(len(points), z)]), triangles


def cylinder(radius: float, height: float, h: float, rng: np.random.Generator, open_faces=()) -> LocalMesh:
    """A closed z-axis cylinder centred at the origin; ``open_faces`` may hold "-z" and/or "+z"."""
    n_theta = max(8, _steps(2 * np.pi * radius, h))
    nz = _steps(height, h)
    theta = 2 * np.pi * np.arange(n_theta)[:, None] / n_theta + np.zeros((1, nz + 1))
    z = np.zeros((n_theta, 1)) + np.arange(nz + 1)[None, :] / nz
    theta[:, 1:-1] += rng.uniform(-GRID_JITTER, GRID_JITTER, (n_theta, nz - 1)) * 2 * np.pi / n_theta
    z[:, 1:-1] += rng.uniform(-GRID_JITTER, GRID_JITTER, (n_theta, nz - 1)) / nz
    side = np.stack([radius * np.cos(theta), radius * np.sin(theta), (z - 0.5) * height], -1).reshape(-1, 3)
    pieces_v, pieces_f = [side], [_grid_faces(n_theta, nz, rng, wrap=True)]
    count = len(side)
    for name, zc in (("-z", -height / 2), ("+z", height / 2)):
        if name in open_faces:
            continue
        verts, faces = _disk(radius, zc, n_theta, h, rng, up=name == "+z")
        pieces_v.append(verts)
        pieces_f.append(faces + count)
        count += len(verts)
    vertices, faces, _ = weld_coincident(np.concatenate(pieces_v), np.concatenate(pieces_f))
    openings = {
        name: np.flatnonzero(np.abs(vertices[:, 2] - zc) < 1e-9)
        for name, zc in (("-z", -height / 2), ("+z", height / 2))
        if name in open_faces
    }
    return LocalMesh(vertices, faces, openings)


def wavy_panel(
    size: tuple[float, float, float], h: float, rng: np.random.Generator, folds: float
) -> LocalMesh:
    """A single hanging sheet (a curtain) in the x-z plane, folded along x with amplitude size[1]/2,
    facing +y; its folds touch the plane y = -size[1]/2."""
    width, depth, height = size
    verts, faces = grid_patch(
        np.array([-width / 2, 0.0, -height / 2]), np.array([width, 0.0, 0.0]), np.array([0.0, 0.0, height]), h, rng
    )
    phase = rng.uniform(0, 2 * np.pi)
    verts[:, 1] = depth / 2 * np.sin(2 * np.pi * folds * (verts[:, 0] / width) + phase)
    # grid_patch(u=x, v=z) faces -y; flip so the sheet's front faces into the room (+y).
    return LocalMesh(verts, faces[:, ::-1].copy(), {})
