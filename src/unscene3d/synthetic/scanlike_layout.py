"""Layouts of the scan-like generator: rectangular rooms of many sizes, L-shaped rooms, and tabletops.

Rooms are furnished like :func:`~unscene3d.synthetic.layout.generate_layout`'s, then dressed with props
(:mod:`unscene3d.synthetic.props`); larger rooms get more table groups and floor clutter, as a real
room of 30 m^2 holds more than one of 15 m^2. Palettes of floor and walls vary more (tiles, carpet,
coloured walls).
"""

from __future__ import annotations

import numpy as np

from unscene3d.synthetic import furniture as fm
from unscene3d.synthetic.layout import (
    Layout,
    finish_layout,
    furnish_room,
    place_floor_clutter,
    place_table_group,
)
from unscene3d.synthetic.planner import OTHER_FURNITURE, Planner, rect_corners
from unscene3d.synthetic.props import add_props

ROOM_KINDS = ("room", "l-room", "tabletop")
TABLE = 7


def _background(plan: Planner) -> tuple[int, int]:
    """Floor (wood planks, tiles or carpet) and wall (white-ish or tinted) materials."""
    rng = plan.rng
    style = rng.integers(3)
    if style == 0:
        red = rng.uniform(110, 210)
        floor = plan.material(red * np.cumprod([1.0, rng.uniform(0.6, 0.85), rng.uniform(0.55, 0.85)]), "planks")
    elif style == 1:
        floor = plan.material(np.clip(rng.uniform(120, 220) + rng.normal(0, 12, 3), 0, 255), "blocks")
    else:
        floor = plan.material(np.clip(rng.uniform(60, 160) + rng.normal(0, 25, 3), 0, 255), "plain")
    tint = rng.normal(0, 18, 3) if rng.random() < 0.3 else rng.normal(0, 6, 3)
    wall = plan.material(np.clip(rng.uniform(165, 240) + tint, 0, 255), "plain")
    plan.background = [floor, wall]
    return floor, wall


def _furnish(plan: Planner, wall_h: float, area: float) -> None:
    furnish_room(plan, wall_h)
    for _ in range(int(area // 18)):  # one more table group and floor clutter per 18 m^2
        place_table_group(plan)
        place_floor_clutter(plan)
    add_props(plan, wall_h)


def room_layout(rng: np.random.Generator) -> Layout:
    """A rectangular room from a small office (2.8 x 3 m) to a large living room (7 x 6 m)."""
    size = (float(rng.uniform(2.8, 7.0)), float(rng.uniform(2.8, 6.0)), float(rng.uniform(2.3, 2.9)))
    plan = Planner(rng, size)
    floor, wall = _background(plan)
    _furnish(plan, size[2], size[0] * size[1])
    return finish_layout(plan, floor, wall)


def l_room_layout(rng: np.random.Generator) -> Layout:
    """An L-shaped room: a rectangle without its far corner (six walls, the floor in three rectangles)."""
    width, depth, height = float(rng.uniform(4.5, 8.0)), float(rng.uniform(4.0, 7.0)), float(rng.uniform(2.3, 2.9))
    notch_w, notch_d = width * rng.uniform(0.3, 0.5), depth * rng.uniform(0.3, 0.5)
    x, y = width - notch_w, depth - notch_d
    corners = np.array([[0.0, 0.0], [width, 0.0], [width, y], [x, y], [x, depth], [0.0, depth]])
    rects = [(0.0, 0.0, x, y), (x, 0.0, width, y), (0.0, y, x, depth)]
    plan = Planner(rng, (width, depth, height), corners)
    # The missing corner is not floor: block it like a footprint.
    plan.footprints.append(rect_corners(np.array([x + notch_w / 2, y + notch_d / 2]),
                                        np.array([notch_w / 2, notch_d / 2]), 0.0))
    floor, wall = _background(plan)
    _furnish(plan, height, width * depth - notch_w * notch_d)
    return finish_layout(plan, floor, wall, corners=corners, floor_rects=rects)


def tabletop_layout(rng: np.random.Generator) -> Layout:
    """A table in a small room with boxes (some stacked) and cylinders standing on it."""
    size = (3.0, 3.0, 2.4)
    plan = Planner(rng, size)
    floor, wall = _background(plan)
    model = fm.table(rng)
    pose = (1.5, 1.5, float(rng.uniform(-0.3, 0.3)))
    table = plan.add(model, TABLE, "table", pose, [plan.furniture_material()] * 2, support=fm.FLOOR)
    plan.add_clutter(table, model, pose, int(rng.integers(4, 11)))
    for obj in list(plan.objects):
        if obj.kind == "clutter" and obj.parts[0].shape == "box" and rng.random() < 0.4:
            part = obj.parts[0]
            size_top = (part.size[0] * rng.uniform(0.4, 0.7), part.size[1] * rng.uniform(0.4, 0.7),
                        rng.uniform(0.06, 0.2))
            top = part.center[2] + part.size[2] / 2
            plan.add(fm.crate(size_top, obj.instance), OTHER_FURNITURE, "clutter",
                     (part.center[0], part.center[1], part.yaw + rng.uniform(-0.2, 0.2)),
                     [plan.vivid_material()], support=obj.instance, z0=top)
    return finish_layout(plan, floor, wall)


def scanlike_layout(kind: str, rng: np.random.Generator) -> Layout:
    """The layout of one of :data:`ROOM_KINDS`."""
    builders = {"room": room_layout, "l-room": l_room_layout, "tabletop": tabletop_layout}
    return builders[kind](rng)
