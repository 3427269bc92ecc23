"""The small things of lived-in rooms, for the scan-like generator: monitors, keyboards, lamps, pillows,
cushions, books, nightstands, office chairs, televisions and whiteboards.

Models follow :mod:`unscene3d.synthetic.furniture` (local frame on the support, front +y). ``add_props``
puts them on or beside the furniture a room already holds (a monitor and keyboard on a desk, pillows on a
bed, books on shelf boards), never overlapping what already stands on the same surface.
"""

from __future__ import annotations

import numpy as np

from unscene3d.synthetic import furniture as fm
from unscene3d.synthetic.furniture import FLOOR, SELF, WALL, Model, Part
from unscene3d.synthetic.planner import PlacedObject, Planner, rect_corners, rects_overlap

# NYU40 ids of the props (the benchmark counts lamps under none of its 18 classes, but class-agnostic does).
CHAIR, PILLOW, BOOKS, TELEVISION, WHITEBOARD, NIGHTSTAND, LAMP, OTHERPROP = 5, 18, 23, 25, 30, 32, 35, 40


def monitor(rng: np.random.Generator, support: int, scale: float = 1.0) -> Model:
    """A flat screen on a neck and a foot (a television when ``scale`` > 1)."""
    width, height = rng.uniform(0.45, 0.65) * scale, rng.uniform(0.3, 0.4) * scale
    depth, foot_t, neck = 0.03 * scale, 0.015, rng.uniform(0.06, 0.14)
    foot = (rng.uniform(0.18, 0.25) * scale, 0.15 * scale)
    parts = [
        Part("box", (*foot, foot_t), (0.0, 0.0, foot_t / 2), material=1, contacts=(("-z", support),)),
        Part("box", (0.05, 0.03, neck), (0.0, 0.0, foot_t + neck / 2), material=1,
             contacts=(("-z", SELF), ("+z", SELF))),
        Part("box", (width, depth, height), (0.0, 0.0, foot_t + neck + height / 2)),
    ]
    return Model(parts, (max(width, foot[0]) / 2, foot[1] / 2), foot_t + neck + height)


def flat_box(size: tuple[float, float, float], support: int) -> Model:
    """A keyboard, laptop or book lying on ``support``."""
    return fm.crate(size, support)


def lamp(rng: np.random.Generator, support: int, standing: bool) -> Model:
    """A desk lamp, or a standing floor lamp: a round foot, a thin pole and a cylindrical shade."""
    foot_r, pole_h, shade_r, shade_h = ((rng.uniform(0.13, 0.18), rng.uniform(1.2, 1.5), rng.uniform(0.16, 0.24), 0.25)
                                        if standing else
                                        (rng.uniform(0.06, 0.08), rng.uniform(0.25, 0.4), rng.uniform(0.07, 0.1), 0.12))
    foot_t, pole_r = 0.03, 0.015 if standing else 0.01
    parts = [
        Part("cylinder", (2 * foot_r, 2 * foot_r, foot_t), (0.0, 0.0, foot_t / 2), material=1,
             contacts=(("-z", support),)),
        Part("cylinder", (2 * pole_r, 2 * pole_r, pole_h), (0.0, 0.0, foot_t + pole_h / 2), material=1,
             contacts=(("-z", SELF), ("+z", SELF))),
        Part("cylinder", (2 * shade_r, 2 * shade_r, shade_h), (0.0, 0.0, foot_t + pole_h + shade_h / 2)),
    ]
    reach = max(foot_r, shade_r)
    return Model(parts, (reach, reach), foot_t + pole_h + shade_h)


def book_row(rng: np.random.Generator, length: float, max_height: float, support: int) -> Model:
    """Books standing side by side along x (one instance, as ScanNet annotates a row of books)."""
    parts, x = [], -length / 2
    depth = rng.uniform(0.15, 0.24)
    while True:
        thick, height = rng.uniform(0.02, 0.05), rng.uniform(0.6, 1.0) * max_height
        if x + thick > length / 2:
            break
        parts.append(Part("box", (thick, depth, height), (x + thick / 2, 0.0, height / 2),
                          material=int(rng.integers(2)), contacts=(("-z", support),)))
        x += thick + rng.uniform(0.002, 0.006)  # a gap, so that neighbours never share a face
    return Model(parts, (length / 2, depth / 2), max(p.size[2] for p in parts) if parts else 0.0)


def nightstand(rng: np.random.Generator) -> Model:
    """A small cabinet with a drawer front, against a wall."""
    width, depth, height = rng.uniform(0.4, 0.55), rng.uniform(0.35, 0.45), rng.uniform(0.45, 0.6)
    parts = [
        Part("box", (width, depth - 0.02, height), (0.0, -0.01, height / 2), contacts=(("-z", FLOOR), ("-y", WALL))),
        Part("box", (width - 0.06, 0.02, height * 0.3), (0.0, depth / 2 - 0.01, height * 0.78), material=1,
             contacts=(("-y", SELF),)),
    ]
    top = fm.Surface(height, (0.0, -0.01), (width / 2 - 0.03, depth / 2 - 0.03), 0.4)
    return Model(parts, (width / 2, depth / 2), height, [top])


def office_chair(rng: np.random.Generator) -> Model:
    """A swivel chair: a round foot, a column, a padded seat and a backrest on a post."""
    width, depth = rng.uniform(0.45, 0.55), rng.uniform(0.45, 0.52)
    seat_h, seat_t = rng.uniform(0.45, 0.52), rng.uniform(0.06, 0.09)
    foot_r, foot_t, column_r = rng.uniform(0.28, 0.33), 0.05, 0.03
    back_h, back_t = rng.uniform(0.4, 0.6), rng.uniform(0.05, 0.08)
    column_h = seat_h - seat_t - foot_t
    parts = [
        Part("cylinder", (2 * foot_r, 2 * foot_r, foot_t), (0.0, 0.0, foot_t / 2), material=1,
             contacts=(("-z", FLOOR),)),
        Part("cylinder", (2 * column_r, 2 * column_r, column_h), (0.0, 0.0, foot_t + column_h / 2), material=1,
             contacts=(("-z", SELF), ("+z", SELF))),
        Part("box", (width, depth, seat_t), (0.0, 0.0, seat_h - seat_t / 2)),
        Part("box", (width * 0.9, back_t, back_h), (0.0, -depth / 2 + back_t / 2, seat_h + 0.05 + back_h / 2),
             contacts=(("-z", SELF),)),
        Part("box", (0.05, back_t, 0.05), (0.0, -depth / 2 + back_t / 2, seat_h + 0.025), material=1,
             contacts=(("-z", SELF), ("+z", SELF))),
    ]
    reach = max(foot_r, width / 2, depth / 2)
    return Model(parts, (reach, reach), seat_h + 0.05 + back_h)


def _top(obj: PlacedObject, part_index: int) -> tuple[float, np.ndarray, np.ndarray, float]:
    """The top face of one of an object's box parts: (height, centre xy, half extents, yaw)."""
    part = obj.parts[part_index]
    return (part.center[2] + part.size[2] / 2, np.array(part.center[:2]), np.array(part.size[:2]) / 2, part.yaw)


class _Surfaces:
    """What already stands on each support, so that props placed there do not overlap it."""

    def __init__(self, plan: Planner) -> None:
        self.plan = plan
        # Keyed by (support instance, height of the surface): a bed's mattress stands on the bed's frame,
        # the pillows on the mattress.
        self.taken: dict[tuple[int, float], list[np.ndarray]] = {}
        for obj in plan.objects:
            for part in obj.parts:
                for face, target in part.contacts:
                    if face == "-z":
                        key = (target, round(part.center[2] - part.size[2] / 2, 4))
                        self.taken.setdefault(key, []).append(self._footprint(part.center, part.size, part.yaw))

    @staticmethod
    def _footprint(center, size, yaw: float) -> np.ndarray:
        return rect_corners(np.array(center[:2]), np.array(size[:2]) / 2, yaw)

    def place(self, obj: PlacedObject, part_index: int, model: Model, label: int, kind: str, materials,
              *, along: tuple[float, float] = (-1.0, 1.0), across: tuple[float, float] = (-1.0, 1.0),
              turn: float = 0.0, tries: int = 20) -> int | None:
        """Stand ``model`` on the top of ``obj.parts[part_index]`` at a free spot; ``along`` / ``across``
        limit where (fractions of the free half extents in x and y of the part's frame)."""
        z, center, half, yaw = _top(obj, part_index)
        room = half - np.array(model.half)
        if np.any(room < 0):
            return None
        rng = self.plan.rng
        for _ in range(tries):
            local = np.array([rng.uniform(*along) * room[0], rng.uniform(*across) * room[1]])
            c, s = np.cos(yaw), np.sin(yaw)
            xy = center + np.array([c * local[0] - s * local[1], s * local[0] + c * local[1]])
            corners = rect_corners(xy, np.array(model.half), yaw + turn)
            key = (obj.instance, round(z, 4))
            if any(rects_overlap(corners, other) for other in self.taken.get(key, [])):
                continue
            self.taken.setdefault(key, []).append(corners)
            return self.plan.add(model, label, kind, (xy[0], xy[1], yaw + turn), materials, support=obj.instance,
                                 z0=z)
        return None


def add_props(plan: Planner, wall_h: float) -> None:
    """Dress the furniture already placed (desks, tables, beds, sofas, shelves, cabinets) and add lamps,
    nightstands, office chairs and a whiteboard where the room has space."""
    rng = plan.rng
    surfaces = _Surfaces(plan)
    dark = plan.material(np.full(3, rng.uniform(20, 50)))
    for obj in list(plan.objects):
        if obj.kind == "desk":
            surfaces.place(obj, 0, monitor(rng, obj.instance), OTHERPROP, "monitor", [dark, dark], across=(-1.0, -0.6))
            surfaces.place(obj, 0, flat_box((rng.uniform(0.4, 0.46), rng.uniform(0.13, 0.17), 0.025), obj.instance),
                           OTHERPROP, "keyboard", [plan.furniture_material()], across=(0.2, 1.0))
            if rng.random() < 0.5:
                surfaces.place(obj, 0, lamp(rng, obj.instance, standing=False), LAMP, "lamp",
                               [plan.vivid_material(), plan.furniture_material()])
        elif obj.kind in ("table", "round table") and rng.random() < 0.4:
            surfaces.place(obj, 0, flat_box((0.33, 0.23, 0.02), obj.instance), OTHERPROP, "laptop", [dark],
                           turn=float(rng.uniform(-0.5, 0.5)))
        elif obj.kind == "bed":
            pillow_material = plan.material(np.clip(rng.uniform(190, 245) + rng.normal(0, 12, 3), 0, 255))
            for _ in range(int(rng.integers(1, 3))):
                size = (rng.uniform(0.45, 0.65), rng.uniform(0.3, 0.4), rng.uniform(0.1, 0.16))
                surfaces.place(obj, 2, fm.crate(size, obj.instance), PILLOW, "pillow", [pillow_material],
                               across=(-1.0, -0.75))
        elif obj.kind == "sofa":
            for _ in range(int(rng.integers(1, 4))):
                size = (rng.uniform(0.35, 0.5), rng.uniform(0.12, 0.18), rng.uniform(0.3, 0.4))
                surfaces.place(obj, 0, fm.crate(size, obj.instance), PILLOW, "pillow", [plan.vivid_material()],
                               across=(-1.0, -0.3), turn=float(rng.uniform(-0.2, 0.2)))
        elif obj.kind == "bookshelf":
            for index, part in enumerate(obj.parts):
                boards = part.size[1] > 0.1 and part.size[2] < 0.1  # the plinth and the boards
                if boards and rng.random() < 0.6:
                    length = rng.uniform(0.2, 0.7) * part.size[0]
                    row = book_row(rng, length, rng.uniform(0.18, 0.28), obj.instance)
                    if row.parts:
                        surfaces.place(obj, index, row, BOOKS, "books",
                                       [plan.vivid_material(), plan.furniture_material()])
        elif obj.kind == "cabinet" and rng.random() < 0.4:
            if rng.random() < 0.5:
                surfaces.place(obj, 0, monitor(rng, obj.instance, scale=1.6), TELEVISION, "television", [dark, dark])
            else:
                surfaces.place(obj, 0, lamp(rng, obj.instance, standing=False), LAMP, "lamp",
                               [plan.vivid_material(), plan.furniture_material()])
    _add_standing_props(plan, wall_h)


def _add_standing_props(plan: Planner, wall_h: float) -> None:
    rng = plan.rng
    if rng.random() < 0.6:
        model = lamp(rng, FLOOR, standing=True)
        spot = plan.try_free(model.half)
        if spot is not None:
            plan.add(model, LAMP, "lamp", spot, [plan.material((235, 225, 200)), plan.furniture_material()],
                     support=FLOOR)
    if rng.random() < 0.5:
        model = nightstand(rng)
        spot = plan.try_wall(model)
        if spot is not None:
            k, x, y, yaw = spot
            stand = plan.add(model, NIGHTSTAND, "nightstand", (x, y, yaw), [plan.furniture_material()] * 2,
                             support=FLOOR, wall=k)
            plan.add_clutter(stand, model, (x, y, yaw), int(rng.integers(0, 2)))
    for _ in range(int(rng.integers(0, 3))):
        model = office_chair(rng)
        spot = plan.try_free(model.half)
        if spot is not None:
            plan.add(model, CHAIR, "chair", spot, [plan.furniture_material(), plan.material((40, 40, 45))],
                     support=FLOOR)
    if rng.random() < 0.3:
        width, height = rng.uniform(1.0, 1.8), min(rng.uniform(0.8, 1.1), wall_h - 1.1)
        model = fm.wall_panel(width, 0.02, height, 0.9)
        spot = plan.try_wall(model, bottom=0.9, on_floor=False)
        if spot is not None:
            k, x, y, yaw = spot
            plan.add(model, WHITEBOARD, "whiteboard", (x, y, yaw), [plan.material((238, 240, 240))], support=WALL,
                     wall=k)
