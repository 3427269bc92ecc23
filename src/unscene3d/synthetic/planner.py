"""Placing furniture models in a room without collisions, and the materials they get.

The room spans [0, width] x [0, depth] with the floor at z = 0; wall k runs from corner k to corner
k+1 counter-clockwise (seen from above), so its inward normal is its direction turned left. Floor
footprints are checked with a separating-axis test, things hung on a wall against the spans of that
wall already taken, clutter against the other clutter on the same surface.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from unscene3d.synthetic import furniture as fm
from unscene3d.synthetic.furniture import FLOOR, SELF, WALL, Model, Part

OTHER_FURNITURE = 39  # NYU40 label of the clutter

# Symbolic supports until the structure's instance ids are known (they follow the objects').
FLOOR_CODE, WALL_CODE = -1, -10

FURNITURE_COLORS = [
    (150, 105, 65), (120, 80, 50), (190, 150, 100), (90, 60, 40),  # woods
    (225, 225, 218), (175, 175, 170), (65, 65, 70), (35, 35, 38),  # white, greys, black
    (70, 90, 140), (140, 60, 55), (80, 120, 80), (180, 160, 120), (110, 90, 130),  # fabrics
]


@dataclass(frozen=True)
class Material:
    """Base colour (0-255 RGB) and a texture pattern: plain, grain (wood), planks (floor), blocks (print)."""

    rgb: tuple[float, float, float]
    pattern: str = "plain"


@dataclass
class PlacedObject:
    """An object instance with its parts in world coordinates; contacts and ``support`` hold instance
    ids (``support`` is what it stands on or hangs from, 0 for nothing); materials are global ids."""

    instance: int
    label: int
    kind: str
    parts: list[Part]
    support: int


def rect_corners(center: np.ndarray, half: np.ndarray, yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    return center + local @ np.array([[c, s], [-s, c]])


def rects_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex quads given by their corners."""
    for quad in (a, b):
        for k in range(4):
            edge = quad[(k + 1) % 4] - quad[k]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


class Planner:
    """Places models one by one, remembering what is taken."""

    def __init__(self, rng: np.random.Generator, size: tuple[float, float, float],
                 corners: np.ndarray | None = None) -> None:
        """``corners``: the room's outline counter-clockwise inside [0, width] x [0, depth] (default: that
        rectangle); floor outside the outline must be blocked by a footprint (see ``footprints``)."""
        self.rng = rng
        self.size = size
        width, depth, _ = size
        rectangle = np.array([[0.0, 0.0], [width, 0.0], [width, depth], [0.0, depth]])
        self.corners = rectangle if corners is None else np.asarray(corners, dtype=np.float64)
        self.footprints: list[np.ndarray] = []
        self.wall_spans: list[list[tuple[float, float, float, float]]] = [[] for _ in range(len(self.corners))]
        self.objects: list[PlacedObject] = []
        self.materials: list[Material] = []
        self.background: list[int] = []  # material ids of floor and walls

    # -- materials -------------------------------------------------------------------------------
    def material(self, rgb, pattern: str = "plain") -> int:
        self.materials.append(Material(tuple(float(c) for c in rgb), pattern))
        return len(self.materials) - 1

    def furniture_material(self) -> int:
        """A furniture colour; one in four is close to a background (wall/floor) colour."""
        rng = self.rng
        if self.background and rng.random() < 0.25:
            base = np.array(self.materials[self.background[rng.integers(len(self.background))]].rgb)
            return self.material(np.clip(base * rng.uniform(0.9, 1.08) + rng.normal(0, 5, 3), 0, 255))
        base = np.array(FURNITURE_COLORS[rng.integers(len(FURNITURE_COLORS))], dtype=float)
        pattern = "grain" if base[0] > base[2] + 30 and rng.random() < 0.7 else "plain"
        return self.material(np.clip(base + rng.normal(0, 12, 3), 0, 255), pattern)

    def vivid_material(self, pattern: str = "plain") -> int:
        hue = self.rng.uniform(0, 1)
        rgb = 255 * np.clip(np.abs(((hue * 6 + np.array([0, 4, 2])) % 6) - 3) - 1, 0, 1)
        return self.material(rgb * self.rng.uniform(0.5, 0.9) + self.rng.uniform(10, 60), pattern)

    # -- geometry --------------------------------------------------------------------------------
    def wall_frame(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
        """(start corner, unit direction, inward normal, length, yaw of an object backed against it)."""
        a, b = self.corners[k], self.corners[(k + 1) % len(self.corners)]
        length = float(np.linalg.norm(b - a))
        u = (b - a) / length
        return a, u, np.array([-u[1], u[0]]), length, float(np.arctan2(u[1], u[0]))

    def floor_free(self, corners: np.ndarray, margin: float = 0.03, others: list[np.ndarray] | None = None) -> bool:
        """Whether the quad lies in the room and clear (by ``margin``) of the footprints taken
        (or of ``others`` when given)."""
        width, depth, _ = self.size
        if corners.min() < -1e-9 or corners[:, 0].max() > width + 1e-9 or corners[:, 1].max() > depth + 1e-9:
            return False
        center = corners.mean(axis=0)
        grown = center + (corners - center) * (1 + margin / max(np.linalg.norm(corners[0] - center), 1e-6))
        return not any(rects_overlap(grown, other) for other in (self.footprints if others is None else others))

    def wall_free(self, k: int, t0: float, t1: float, z0: float, z1: float, margin: float = 0.05) -> bool:
        """Whether the span [t0, t1] x [z0, z1] of wall k is clear (by ``margin`` along the wall)."""
        spans = self.wall_spans[k]
        return all(t1 + margin <= s0 or s1 + margin <= t0 or z1 <= w0 or w1 <= z0 for s0, s1, w0, w1 in spans)

    def try_wall(self, model: Model, *, bottom: float = 0.0, on_floor: bool = True, tries: int = 40):
        """A free spot with the model's back against a wall: (wall, x, y, yaw) or None."""
        hx, hy = model.half
        for _ in range(tries):
            k = int(self.rng.integers(len(self.corners)))
            a, u, n, length, yaw = self.wall_frame(k)
            if length < 2 * hx + 0.1:
                continue
            t = self.rng.uniform(hx + 0.02, length - hx - 0.02)
            center = a + t * u + hy * n
            corners = rect_corners(center, np.array(model.half), yaw)
            if not self.wall_free(k, t - hx, t + hx, bottom, model.height):
                continue
            if on_floor and not self.floor_free(corners):
                continue
            self.wall_spans[k].append((t - hx, t + hx, bottom, model.height))
            if on_floor:
                self.footprints.append(corners)
            return k, center[0], center[1], yaw
        return None

    def try_free(self, half: tuple[float, float], tries: int = 60, margin: float = 0.03):
        """A free spot anywhere on the floor for a footprint with these half extents: (x, y, yaw)."""
        width, depth, _ = self.size
        for _ in range(tries):
            x, y = self.rng.uniform(0, width), self.rng.uniform(0, depth)
            yaw = self.rng.uniform(-np.pi, np.pi)
            corners = rect_corners(np.array([x, y]), np.array(half), yaw)
            if self.floor_free(corners, margin):
                self.footprints.append(corners)
                return x, y, yaw
        return None

    # -- objects ---------------------------------------------------------------------------------
    def add(self, model: Model, label: int, kind: str, pose, materials, *, support: int, wall: int = -1,
            z0: float = 0.0) -> int:
        """Put ``model`` at pose (x, y, yaw) on height z0; returns its instance id."""
        instance = len(self.objects) + 1
        x, y, yaw = pose
        c, s = np.cos(yaw), np.sin(yaw)
        codes = {FLOOR: FLOOR_CODE, WALL: WALL_CODE - wall, SELF: instance}
        parts = []
        for part in model.parts:
            px, py, pz = part.center
            center = (x + c * px - s * py, y + s * px + c * py, z0 + pz)
            contacts = tuple((face, codes.get(target, target)) for face, target in part.contacts)
            parts.append(replace(part, center=center, yaw=yaw + part.yaw, material=materials[part.material],
                                 contacts=contacts))
        self.objects.append(PlacedObject(instance, label, kind, parts, codes.get(support, support)))
        return instance

    def surfaces_of(self, model: Model, pose, z0: float = 0.0):
        """The model's surfaces placed in the world: (height, centre xy, the Surface, yaw)."""
        x, y, yaw = pose
        c, s = np.cos(yaw), np.sin(yaw)
        for surface in model.surfaces:
            sx, sy = surface.center
            yield z0 + surface.z, np.array([x + c * sx - s * sy, y + s * sx + c * sy]), surface, yaw

    def add_clutter(self, instance: int, model: Model, pose, count: int, z0: float = 0.0) -> None:
        """Stand up to ``count`` boxes and cylinders on the model's surfaces (instance = the model's)."""
        surfaces = list(self.surfaces_of(model, pose, z0))
        if not surfaces:
            return
        taken: dict[int, list[np.ndarray]] = {}
        for _ in range(count):
            k = int(self.rng.integers(len(surfaces)))
            z, center, surface, yaw = surfaces[k]
            hx, hy = surface.half
            if min(hx, hy) < 0.09 or surface.max_height < 0.15:
                continue
            item, item_yaw = self._clutter_item(hx, hy, surface.max_height, instance)
            ix, iy = item.half
            reach = np.hypot(ix, iy) if item_yaw != 0.0 else max(ix, iy)
            if reach > min(hx, hy):
                continue
            for _ in range(20):
                lx, ly = self.rng.uniform(-hx + reach, hx - reach), self.rng.uniform(-hy + reach, hy - reach)
                c, s = np.cos(yaw), np.sin(yaw)
                pos = center + np.array([c * lx - s * ly, s * lx + c * ly])
                corners = rect_corners(pos, np.array(item.half), yaw + item_yaw)
                if not any(rects_overlap(corners, other) for other in taken.get(k, [])):
                    taken.setdefault(k, []).append(corners)
                    material = self.vivid_material() if self.rng.random() < 0.6 else self.furniture_material()
                    self.add(item, OTHER_FURNITURE, "clutter", (pos[0], pos[1], yaw + item_yaw), [material],
                             support=instance, z0=z)
                    break

    def _clutter_item(self, hx: float, hy: float, max_height: float, support: int) -> tuple[Model, float]:
        rng = self.rng
        height = rng.uniform(0.15, min(0.35, max_height))
        if rng.random() < 0.45:
            radius = rng.uniform(0.09, max(0.09, min(0.14, hx, hy)))
            return fm.canister(radius, height, support), 0.0
        size = (rng.uniform(0.15, max(0.15, min(0.4, 2 * hx))), rng.uniform(0.15, max(0.15, min(0.4, 2 * hy))), height)
        return fm.crate(size, support), float(rng.uniform(-0.4, 0.4))
