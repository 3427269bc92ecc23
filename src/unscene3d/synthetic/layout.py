"""Random room layouts: which objects, where, on what, in which colours.

Contact is intended: chairs pushed against tables, clutter standing on tables, shelves and
cabinets, boxes stacked, furniture backed against walls; nothing intersects (see ``planner``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from unscene3d.synthetic import furniture as fm
from unscene3d.synthetic.furniture import FLOOR, WALL, Model
from unscene3d.synthetic.planner import (
    FLOOR_CODE,
    OTHER_FURNITURE,
    WALL_CODE,
    Material,
    PlacedObject,
    Planner,
    rect_corners,
)

# NYU40 ids (the benchmark's foreground set, plus the void structure labels).
WALL_LABEL, FLOOR_LABEL = 1, 2
CABINET, BED, CHAIR, SOFA, TABLE, DOOR, WINDOW, BOOKSHELF, PICTURE = 3, 4, 5, 6, 7, 8, 9, 10, 11
DESK, CURTAIN, REFRIGERATOR = 14, 16, 24


@dataclass
class Layout:
    """A furnished room: size (width, depth, wall height), objects, and the structure's ids.

    ``corners`` is the outline counter-clockwise (None: the rectangle [0, width] x [0, depth]); wall k runs
    from corner k to corner k+1. ``floor_rects`` tile the floor as (x0, y0, x1, y1) rectangles that meet
    edge to edge (None: one rectangle).
    """

    size: tuple[float, float, float]
    objects: list[PlacedObject]
    floor_instance: int
    wall_instances: tuple[int, ...]
    floor_material: int
    wall_material: int
    materials: list[Material] = field(default_factory=list)
    corners: np.ndarray | None = None
    floor_rects: list[tuple[float, float, float, float]] | None = None


def _seat_chairs(plan: Planner, table_pose, chair_model: Model, seats, materials, existing: list[np.ndarray]) -> None:
    """Chairs facing a table. ``seats``: (angle in the table's frame, table reach that way, pushed in).

    A pushed-in chair has its seat under the top and its backrest's front face on the table edge;
    otherwise it is pulled out a little. Chairs may reach under their own table but into nothing in
    ``existing``.
    """
    rng = plan.rng
    x, y, yaw = table_pose
    cdy = chair_model.half[1]
    back_t = chair_model.parts[-1].size[1]
    placed: list[np.ndarray] = []
    for angle, reach, pushed in seats:
        dist = reach - cdy + back_t + (0.0 if pushed else rng.uniform(0.1, 2 * cdy))
        world = yaw + angle
        cx, cy = x + dist * np.cos(world), y + dist * np.sin(world)
        chair_yaw = world + np.pi / 2  # the chair's local +y points to the table centre
        corners = rect_corners(np.array([cx, cy]), np.array(chair_model.half), chair_yaw)
        if plan.floor_free(corners, others=existing + placed):
            placed.append(corners)
            plan.footprints.append(corners)
            plan.add(chair_model, CHAIR, "chair", (cx, cy, chair_yaw), materials, support=FLOOR)


def place_table_group(plan: Planner) -> None:
    """A table with chairs around it, some pushed in so their backrest touches the table top."""
    rng = plan.rng
    round_top = rng.random() < 0.3
    model = fm.round_table(rng) if round_top else fm.table(rng)
    n_chairs = int(rng.integers(2, 5))
    hx, hy = model.half
    if round_top:
        angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(n_chairs) / n_chairs
    else:
        angles = np.array([np.pi / 2, -np.pi / 2, 0.0, np.pi][:n_chairs])
    # At the ends of a rectangular table a pushed-in chair would hit the legs, so it stays out.
    seats = [
        (angle, hx if round_top or abs(np.sin(angle)) < 0.5 else hy, bool(rng.random() < 0.5)
         and (round_top or abs(np.sin(angle)) > 0.5))
        for angle in angles
    ]
    existing = list(plan.footprints)
    pose = plan.try_free(model.half, margin=0.05)
    if pose is None:
        return
    table_material, leg_material = plan.furniture_material(), plan.furniture_material()
    table_id = plan.add(model, TABLE, "round table" if round_top else "table", pose,
                        [table_material, leg_material if rng.random() < 0.5 else table_material], support=FLOOR)
    plan.add_clutter(table_id, model, pose, int(rng.integers(1, 4)))
    chair_materials = [plan.furniture_material(), plan.furniture_material()]
    _seat_chairs(plan, pose, fm.chair(rng), seats, chair_materials, existing)


def generate_layout(rng: np.random.Generator) -> Layout:
    """A random furnished room (see the table in :mod:`unscene3d.synthetic`)."""
    size = (float(rng.uniform(3.8, 5.2)), float(rng.uniform(3.4, 4.6)), float(rng.uniform(2.2, 2.5)))
    wall_h = size[2]
    plan = Planner(rng, size)
    red = rng.uniform(110, 210)  # wood-like: green and blue falling off from red
    floor_material = plan.material(red * np.cumprod([1.0, rng.uniform(0.6, 0.85), rng.uniform(0.55, 0.85)]), "planks")
    wall_material = plan.material(rng.uniform(175, 235) + rng.normal(0, 10, 3), "plain")
    plan.background = [floor_material, wall_material]

    furnish_room(plan, wall_h)
    return finish_layout(plan, floor_material, wall_material)


def furnish_room(plan: Planner, wall_h: float) -> None:
    """Door, bed or sofa, shelves, cabinets, fridge, desk, a table group, floor clutter and wall decor."""
    rng = plan.rng

    def against_wall(model: Model, label: int, kind: str, materials, **kwargs):
        spot = plan.try_wall(model, **kwargs)
        if spot is None:
            return None, None
        k, x, y, yaw = spot
        return plan.add(model, label, kind, (x, y, yaw), materials, support=FLOOR, wall=k), (x, y, yaw)

    door = fm.door(rng, wall_h - 0.1)
    _, door_pose = against_wall(door, DOOR, "door", [plan.furniture_material()])
    if door_pose is not None:  # keep the floor in front of the door free
        x, y, yaw = door_pose
        ahead = np.array([x, y]) + 0.45 * np.array([-np.sin(yaw), np.cos(yaw)])
        plan.footprints.append(rect_corners(ahead, np.array([door.half[0], 0.43]), yaw))

    if rng.random() < 0.5:
        against_wall(fm.bed(rng), BED, "bed", [plan.furniture_material(), plan.material((235, 235, 228))])
    elif rng.random() < 0.8:
        against_wall(fm.sofa(rng), SOFA, "sofa", [plan.furniture_material()] * 2)
    for _ in range(1 + int(rng.random() < 0.3)):
        model = fm.bookshelf(rng, wall_h - 0.15)
        shelf_id, pose = against_wall(model, BOOKSHELF, "bookshelf", [plan.furniture_material()] * 2)
        if shelf_id is not None:
            plan.add_clutter(shelf_id, model, pose, int(rng.integers(2, 6)))
    for _ in range(int(rng.integers(0, 3))):
        model = fm.cabinet(rng)
        materials = [plan.furniture_material(), plan.furniture_material()]
        cabinet_id, pose = against_wall(model, CABINET, "cabinet", materials)
        if cabinet_id is not None:
            plan.add_clutter(cabinet_id, model, pose, int(rng.integers(0, 3)))
    if rng.random() < 0.3:
        white = plan.material(np.full(3, rng.uniform(200, 240)))
        against_wall(fm.refrigerator(rng, wall_h - 0.1), REFRIGERATOR, "refrigerator", [white, white])
    if rng.random() < 0.5:
        model = fm.table(rng)
        existing = list(plan.footprints)
        desk_id, pose = against_wall(model, DESK, "desk", [plan.furniture_material()] * 2)
        if desk_id is not None:
            plan.add_clutter(desk_id, model, pose, int(rng.integers(1, 3)))
            seat = (np.pi / 2, model.half[1], bool(rng.random() < 0.5))
            _seat_chairs(plan, pose, fm.chair(rng), [seat], [plan.furniture_material()] * 2, existing)

    place_table_group(plan)
    place_floor_clutter(plan)
    place_wall_decor(plan, wall_h)


def finish_layout(plan: Planner, floor_material: int, wall_material: int, **room) -> Layout:
    """Give the structure its instance ids (after the objects') and resolve the symbolic supports;
    ``room`` passes ``corners`` and ``floor_rects`` of a room that is not a rectangle."""
    count = len(plan.objects)
    walls = tuple(count + 1 + k for k in range(len(plan.corners)))
    floor = count + len(walls) + 1
    resolve = {FLOOR_CODE: floor, **{WALL_CODE - k: walls[k] for k in range(len(walls))}}
    for obj in plan.objects:
        obj.support = resolve.get(obj.support, obj.support)
        obj.parts = [replace(p, contacts=tuple((f, resolve.get(t, t)) for f, t in p.contacts)) for p in obj.parts]
    return Layout(plan.size, plan.objects, floor, walls, floor_material, wall_material, plan.materials, **room)


def place_floor_clutter(plan: Planner) -> None:
    """Stacks of boxes, bins and a few loose chairs on the floor."""
    rng = plan.rng
    for _ in range(int(rng.integers(1, 3))):
        size = np.array([rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.5), rng.uniform(0.2, 0.45)])
        model = fm.crate(tuple(size), FLOOR)
        spot = plan.try_free(model.half)
        if spot is None:
            continue
        x, y, yaw = spot
        support = plan.add(model, OTHER_FURNITURE, "box", spot, [plan.furniture_material()], support=FLOOR)
        z = 0.0
        for _ in range(int(rng.integers(0, 3))):
            # Each box on the stack is smaller than the one below, slightly shifted and turned.
            z += size[2]
            size = np.array([*(size[:2] - rng.uniform(0.04, 0.1, 2)), rng.uniform(0.15, 0.35)])
            if size[:2].min() < 0.16:
                break
            shift = rng.uniform(-0.015, 0.015, 2)
            model = fm.crate(tuple(size), support)
            pose = (x + shift[0], y + shift[1], yaw + rng.uniform(-0.05, 0.05))
            support = plan.add(model, OTHER_FURNITURE, "box", pose, [plan.vivid_material()], support=support, z0=z)
    for _ in range(int(rng.integers(1, 4))):
        radius, height = rng.uniform(0.12, 0.2), rng.uniform(0.3, 0.6)
        spot = plan.try_free((radius, radius))
        if spot is not None:
            plan.add(fm.canister(radius, height, FLOOR), OTHER_FURNITURE, "bin", spot,
                     [plan.vivid_material() if rng.random() < 0.5 else plan.furniture_material()],
                     support=FLOOR)
    for _ in range(int(rng.integers(0, 3))):
        model = fm.chair(rng)
        spot = plan.try_free(model.half)
        if spot is not None:
            plan.add(model, CHAIR, "chair", spot, [plan.furniture_material()] * 2, support=FLOOR)


def place_wall_decor(plan: Planner, wall_h: float) -> None:
    """A window (maybe with curtains beside it) and pictures, above whatever stands at the wall."""
    rng = plan.rng
    if rng.random() < 0.7:
        width, height = rng.uniform(0.8, 1.4), min(rng.uniform(0.9, 1.3), wall_h - 1.0)
        model = fm.wall_panel(width, 0.05, height, 0.85)
        spot = plan.try_wall(model, bottom=0.85, on_floor=False)
        if spot is not None:
            k, x, y, yaw = spot
            plan.add(model, WINDOW, "window", (x, y, yaw), [plan.material((200, 215, 230))], support=WALL, wall=k)
            if rng.random() < 0.6:
                _hang_curtains(plan, k, (x, y, yaw), width, 0.85 + height + 0.1)
    for _ in range(int(rng.integers(1, 3))):
        width, height = rng.uniform(0.35, 0.9), rng.uniform(0.3, 0.7)
        bottom = rng.uniform(1.2, 1.6) - height / 2
        model = fm.wall_panel(width, rng.uniform(0.02, 0.035), height, bottom)
        spot = plan.try_wall(model, bottom=bottom, on_floor=False)
        if spot is not None:
            k, x, y, yaw = spot
            plan.add(model, PICTURE, "picture", (x, y, yaw), [plan.vivid_material("blocks")], support=WALL, wall=k)


def _hang_curtains(plan: Planner, k: int, window_pose, window_width: float, top: float) -> None:
    """Curtains left and right of a window, where the wall and floor there are free."""
    rng = plan.rng
    a, u, n, length, yaw = plan.wall_frame(k)
    t_window = float(np.dot(np.array(window_pose[:2]) - a, u))
    material = plan.vivid_material() if rng.random() < 0.5 else plan.furniture_material()
    for side in (-1, 1):
        model = fm.curtain(rng, rng.uniform(0.3, 0.5), top)
        hx, hy = model.half
        t = t_window + side * (window_width / 2 + hx + 0.02)
        if t - hx < 0.02 or t + hx > length - 0.02 or not plan.wall_free(k, t - hx, t + hx, 0.0, top, margin=0.0):
            continue
        center = a + t * u + (hy + 0.005) * n
        corners = rect_corners(center, np.array(model.half), yaw)
        if plan.floor_free(corners):
            plan.footprints.append(corners)
            plan.wall_spans[k].append((t - hx, t + hx, 0.0, top))
            plan.add(model, CURTAIN, "curtain", (center[0], center[1], yaw), [material], support=0)


def ground_truth(layout: Layout, instance: np.ndarray) -> np.ndarray:
    """Per-vertex ``label * 1000 + instance`` from the vertices' instance ids."""
    labels = np.zeros(layout.floor_instance + 1, dtype=np.int64)
    for obj in layout.objects:
        labels[obj.instance] = obj.label
    labels[list(layout.wall_instances)] = WALL_LABEL
    labels[layout.floor_instance] = FLOOR_LABEL
    return labels[instance] * 1000 + instance
