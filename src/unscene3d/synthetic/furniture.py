"""Furniture models as parts in an object's local frame.

Local frame: origin on the floor at the centre of the object's footprint, z up, the object's front
facing +y (so its back, where it meets a wall, is at -y). A part's ``contacts`` name the open faces
that rest on (or lean against) a support: ``FLOOR``, ``WALL`` or ``SELF`` (another part of the same
object, e.g. a table leg under the top), resolved to instance ids when the object is placed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FLOOR, WALL, SELF = -1, -2, -3


@dataclass(frozen=True)
class Part:
    """One primitive. ``size``: box (sx, sy, sz); cylinder (2r, 2r, height); curtain (width, fold
    depth, height) with ``folds`` folds. ``center`` is the centre of its bounding box; ``material``
    indexes the object's material list (0 = main, 1 = secondary)."""

    shape: str
    size: tuple[float, float, float]
    center: tuple[float, float, float]
    yaw: float = 0.0
    material: int = 0
    contacts: tuple[tuple[str, int], ...] = ()
    folds: float = 0.0


@dataclass(frozen=True)
class Surface:
    """A free horizontal rectangle on top of a part where clutter may stand (local frame)."""

    z: float
    center: tuple[float, float]
    half: tuple[float, float]
    max_height: float


@dataclass
class Model:
    """An object's parts, footprint half extents (x, y) and the surfaces it offers."""

    parts: list[Part]
    half: tuple[float, float]
    height: float
    surfaces: list[Surface] = field(default_factory=list)


def _leg(x: float, y: float, size: float, height: float, round_leg: bool) -> Part:
    shape = "cylinder" if round_leg else "box"
    return Part(
        shape, (size, size, height), (x, y, height / 2), material=1,
        contacts=(("-z", FLOOR), ("+z", SELF)),
    )


def table(rng: np.random.Generator, *, against_wall: bool = False) -> Model:
    """A rectangular table (or desk): a top on four legs."""
    length, depth = rng.uniform(1.0, 1.6), rng.uniform(0.65, 0.9)
    height, thick = rng.uniform(0.72, 0.78), rng.uniform(0.03, 0.05)
    leg, inset = rng.uniform(0.04, 0.06), 0.04
    round_leg = bool(rng.random() < 0.4)
    parts = [Part("box", (length, depth, thick), (0.0, 0.0, height - thick / 2))]
    lx, ly = length / 2 - inset - leg / 2, depth / 2 - inset - leg / 2
    parts += [_leg(sx * lx, sy * ly, leg, height - thick, round_leg) for sx in (-1, 1) for sy in (-1, 1)]
    surface = Surface(height, (0.0, 0.0), (length / 2 - 0.05, depth / 2 - 0.05), 0.45)
    return Model(parts, (length / 2, depth / 2), height, [surface])


def round_table(rng: np.random.Generator) -> Model:
    """A round table: a disc top on a central pole and a round foot."""
    radius, height, thick = rng.uniform(0.4, 0.6), rng.uniform(0.72, 0.78), 0.04
    foot_r, foot_t, pole_r = rng.uniform(0.22, 0.3), 0.03, rng.uniform(0.035, 0.05)
    pole_h = height - thick - foot_t
    parts = [
        Part("cylinder", (2 * radius, 2 * radius, thick), (0.0, 0.0, height - thick / 2)),
        Part("cylinder", (2 * pole_r,) * 2 + (pole_h,), (0.0, 0.0, foot_t + pole_h / 2), material=1,
             contacts=(("-z", SELF), ("+z", SELF))),
        Part("cylinder", (2 * foot_r, 2 * foot_r, foot_t), (0.0, 0.0, foot_t / 2), material=1,
             contacts=(("-z", FLOOR),)),
    ]
    side = radius * 0.68
    return Model(parts, (radius, radius), height, [Surface(height, (0.0, 0.0), (side, side), 0.45)])


def chair(rng: np.random.Generator) -> Model:
    """A chair facing +y: seat on four legs, backrest standing on the seat's rear edge."""
    width, depth = rng.uniform(0.42, 0.52), rng.uniform(0.42, 0.5)
    seat_h, seat_t = rng.uniform(0.43, 0.48), rng.uniform(0.03, 0.06)
    back_h, back_t = rng.uniform(0.35, 0.5), rng.uniform(0.03, 0.05)
    leg, inset = rng.uniform(0.03, 0.045), 0.02
    round_leg = bool(rng.random() < 0.5)
    parts = [Part("box", (width, depth, seat_t), (0.0, 0.0, seat_h - seat_t / 2))]
    lx, ly = width / 2 - inset - leg / 2, depth / 2 - inset - leg / 2
    parts += [_leg(sx * lx, sy * ly, leg, seat_h - seat_t, round_leg) for sx in (-1, 1) for sy in (-1, 1)]
    parts.append(
        Part("box", (width, back_t, back_h), (0.0, -depth / 2 + back_t / 2, seat_h + back_h / 2),
             contacts=(("-z", SELF),))
    )
    return Model(parts, (width / 2, depth / 2), seat_h + back_h)


def bookshelf(rng: np.random.Generator, max_height: float) -> Model:
    """An open bookshelf against a wall: two sides, a back panel, a plinth, shelves and a top."""
    width, depth = rng.uniform(0.8, 1.3), rng.uniform(0.3, 0.4)
    height = min(rng.uniform(1.4, 2.0), max_height)
    side_t, back_t, board_t, plinth = 0.025, 0.02, 0.025, 0.07
    inner_w, inner_d = width - 2 * side_t, depth - back_t
    y_front = back_t / 2  # centre of the boards in y: in front of the back panel
    parts = [
        Part("box", (side_t, depth, height), (sx * (width - side_t) / 2, 0.0, height / 2),
             contacts=(("-z", FLOOR),))
        for sx in (-1, 1)
    ]
    parts.append(Part("box", (inner_w, back_t, height), (0.0, -(depth - back_t) / 2, height / 2), material=1,
                      contacts=(("-y", WALL), ("-z", FLOOR), ("-x", SELF), ("+x", SELF))))
    board_contacts = (("-x", SELF), ("+x", SELF), ("-y", SELF))
    parts.append(Part("box", (inner_w, inner_d, plinth), (0.0, y_front, plinth / 2),
                      contacts=board_contacts + (("-z", FLOOR),)))
    n_levels = int(np.clip((height - plinth) // 0.36, 2, 5))
    levels = plinth + (height - plinth - board_t) * np.arange(1, n_levels + 1) / n_levels
    surfaces = [Surface(plinth, (0.0, y_front), (inner_w / 2 - 0.02, inner_d / 2 - 0.02), levels[0] - plinth - 0.05)]
    for k, z in enumerate(levels):
        parts.append(Part("box", (inner_w, inner_d, board_t), (0.0, y_front, z + board_t / 2), contacts=board_contacts))
        if k + 1 < n_levels:
            gap = levels[k + 1] - z - board_t - 0.05
            surfaces.append(Surface(z + board_t, (0.0, y_front), (inner_w / 2 - 0.02, inner_d / 2 - 0.02), gap))
    return Model(parts, (width / 2, depth / 2), height, surfaces)


def cabinet(rng: np.random.Generator) -> Model:
    """A cabinet against a wall with one or two door panels on its front."""
    width, depth, height = rng.uniform(0.5, 1.2), rng.uniform(0.4, 0.6), rng.uniform(0.5, 1.0)
    body_d = depth - 0.02
    parts = [Part("box", (width, body_d, height), (0.0, -0.01, height / 2), contacts=(("-z", FLOOR), ("-y", WALL)))]
    n_doors = 1 if width < 0.7 else 2
    door_w = (width - 0.03 * (n_doors + 1)) / n_doors
    for k in range(n_doors):
        x = -width / 2 + 0.03 + door_w / 2 + k * (door_w + 0.03)
        parts.append(Part("box", (door_w, 0.02, height - 0.08), (x, depth / 2 - 0.01, height / 2), material=1,
                          contacts=(("-y", SELF),)))
    surface = Surface(height, (0.0, -0.01), (width / 2 - 0.04, body_d / 2 - 0.04), 0.4)
    return Model(parts, (width / 2, depth / 2), height, [surface])


def refrigerator(rng: np.random.Generator, max_height: float) -> Model:
    """A tall box against a wall with a door line (a thin panel) on its front."""
    width, depth = rng.uniform(0.6, 0.75), rng.uniform(0.6, 0.7)
    height = min(rng.uniform(1.6, 1.9), max_height)
    parts = [
        Part("box", (width, depth - 0.02, height), (0.0, -0.01, height / 2), contacts=(("-z", FLOOR), ("-y", WALL))),
        Part("box", (width - 0.04, 0.02, height * 0.35), (0.0, depth / 2 - 0.01, height * 0.78), material=1,
             contacts=(("-y", SELF),)),
    ]
    return Model(parts, (width / 2, depth / 2), height)


def bed(rng: np.random.Generator) -> Model:
    """A bed with its headboard against a wall: frame, mattress on it, headboard."""
    width, length = rng.uniform(1.0, 1.7), rng.uniform(1.9, 2.1)
    base_h, mattress_h, head_t = rng.uniform(0.25, 0.35), rng.uniform(0.15, 0.25), 0.06
    head_h = rng.uniform(0.8, 1.1)
    base_l = length - head_t
    parts = [
        Part("box", (width, head_t, head_h), (0.0, -(length - head_t) / 2, head_h / 2),
             contacts=(("-z", FLOOR), ("-y", WALL))),
        Part("box", (width, base_l, base_h), (0.0, head_t / 2, base_h / 2), contacts=(("-z", FLOOR),)),
        Part("box", (width - 0.06, base_l - 0.06, mattress_h), (0.0, head_t / 2, base_h + mattress_h / 2),
             material=1, contacts=(("-z", SELF),)),
    ]
    return Model(parts, (width / 2, length / 2), head_h)


def sofa(rng: np.random.Generator) -> Model:
    """A sofa against a wall: a base, two armrests standing on it, a backrest, and loose seat and back cushions
    with a crease between each: one object whose parts each look like a box of its own, as real sofas' do."""
    length, depth = rng.uniform(1.5, 2.2), rng.uniform(0.8, 0.95)
    seat_h, back_h, back_t = rng.uniform(0.38, 0.45), rng.uniform(0.35, 0.45), rng.uniform(0.15, 0.22)
    arm_w, arm_h = rng.uniform(0.15, 0.22), rng.uniform(0.15, 0.25)
    # The cushions draw from a generator of their own (seeded by the sofa's size), so that adding them left every
    # later draw of the room, and so every other object, as it was.
    own = np.random.default_rng(int(length * 1e6))
    cushions, cushion_h, gap = int(own.integers(2, 4)), own.uniform(0.10, 0.16), own.uniform(0.01, 0.025)
    base_h = seat_h - cushion_h
    arm_d = depth - back_t
    backrest_h = back_h + cushion_h  # from the base, as the armrests: the cushions sit between them
    parts = [
        Part("box", (length, depth, base_h), (0.0, 0.0, base_h / 2), contacts=(("-z", FLOOR), ("-y", WALL))),
        Part("box", (length, back_t, backrest_h), (0.0, -(depth - back_t) / 2, base_h + backrest_h / 2),
             contacts=(("-z", SELF), ("-y", WALL))),
    ]
    parts += [
        Part("box", (arm_w, arm_d, arm_h + cushion_h), (sx * (length - arm_w) / 2, back_t / 2,
                                                         base_h + (arm_h + cushion_h) / 2),
             material=1, contacts=(("-z", SELF),))
        for sx in (-1, 1)
    ]
    inner = length - 2 * arm_w
    width = inner / cushions - gap
    back_cushion_t = min(own.uniform(0.10, 0.16), arm_d / 3)
    for k in range(cushions):
        x = -inner / 2 + (k + 0.5) * inner / cushions
        parts.append(Part("box", (width, arm_d - back_cushion_t - gap, cushion_h),
                          (x, back_t / 2 + (back_cushion_t + gap) / 2, base_h + cushion_h / 2),
                          contacts=(("-z", SELF),)))
        back_cushion_h = cushion_h + 0.85 * back_h  # from the base, behind the seat cushion, up the backrest
        parts.append(Part("box", (width, back_cushion_t, back_cushion_h),
                          (x, -depth / 2 + back_t + back_cushion_t / 2, base_h + back_cushion_h / 2),
                          contacts=(("-z", SELF), ("-y", SELF))))
    return Model(parts, (length / 2, depth / 2), seat_h + back_h)


def door(rng: np.random.Generator, max_height: float) -> Model:
    width, height = rng.uniform(0.8, 0.95), min(rng.uniform(1.95, 2.1), max_height)
    part = Part("box", (width, 0.04, height), (0.0, 0.0, height / 2), contacts=(("-z", FLOOR), ("-y", WALL)))
    return Model([part], (width / 2, 0.02), height)


def wall_panel(width: float, thick: float, height: float, bottom: float) -> Model:
    """A flat box hung on a wall (window, picture), bottom edge ``bottom`` above the floor."""
    part = Part("box", (width, thick, height), (0.0, 0.0, bottom + height / 2), contacts=(("-y", WALL),))
    return Model([part], (width / 2, thick / 2), bottom + height)


def curtain(rng: np.random.Generator, width: float, top: float) -> Model:
    """A folded curtain hanging from ``top`` down to just above the floor; its folds touch the wall."""
    depth, bottom = rng.uniform(0.05, 0.09), rng.uniform(0.03, 0.15)
    folds = max(2.0, width / rng.uniform(0.1, 0.18))
    part = Part("curtain", (width, depth, top - bottom), (0.0, 0.0, (top + bottom) / 2), folds=folds)
    return Model([part], (width / 2, depth / 2), top)


def crate(size: tuple[float, float, float], support: int) -> Model:
    """A closed box (storage box, clutter) standing on ``support``."""
    part = Part("box", size, (0.0, 0.0, size[2] / 2), contacts=(("-z", support),))
    return Model([part], (size[0] / 2, size[1] / 2), size[2])


def canister(radius: float, height: float, support: int) -> Model:
    """A closed cylinder (bin, pot, bucket) standing on ``support``."""
    part = Part("cylinder", (2 * radius, 2 * radius, height), (0.0, 0.0, height / 2), contacts=(("-z", support),))
    return Model([part], (radius, radius), height)
