"""Turn a layout into one triangle mesh, welding every object onto what it rests on.

Each part is meshed on its own and placed in the world. A part has no triangles on its hidden sides
(the bottom of a box on the floor, the back of a picture); the rim of such an opening is *welded* to
its support, as surfaces fuse in a reconstructed scan: the support's vertices inside the opening are
removed (they are hidden) and the nearest remaining support vertex to each rim vertex is merged into
that rim vertex. So the whole room is one connected mesh, as in ScanNet, and instances cannot be told
apart by mesh connectivity alone. Parts of one object are welded the same way (legs to the table top).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree

from unscene3d.synthetic import primitives
from unscene3d.synthetic.furniture import Part
from unscene3d.synthetic.layout import Layout

_FACE_NORMALS = {
    "-x": (-1.0, 0.0, 0.0), "+x": (1.0, 0.0, 0.0), "-y": (0.0, -1.0, 0.0),
    "+y": (0.0, 1.0, 0.0), "-z": (0.0, 0.0, -1.0), "+z": (0.0, 0.0, 1.0),
}
# How far a support vertex may lie from the plane of a contact and still belong to it (metres).
_PLANE_TOLERANCE = 1e-5


@dataclass
class RawMesh:
    """The welded scene mesh before noise and colour, with per-vertex instance and material ids."""

    vertices: np.ndarray
    faces: np.ndarray
    instance: np.ndarray
    material: np.ndarray


@dataclass
class _Contact:
    ring: np.ndarray  # global indices of the opening's rim vertices
    support: int  # instance id of the support
    part: int  # the resting part's id (its own vertices are never support)
    normal: np.ndarray  # outward normal of the opening, i.e. pointing into the support
    offset: float


def _rotation_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _mesh_part(part: Part, h: float, rng: np.random.Generator) -> primitives.LocalMesh:
    open_faces = tuple(face for face, _ in part.contacts)
    if part.shape == "box":
        return primitives.box(part.size, h, rng, open_faces)
    if part.shape == "cylinder":
        return primitives.cylinder(part.size[0] / 2, part.size[2], h, rng, open_faces)
    if part.shape == "curtain":
        return primitives.wavy_panel(part.size, h, rng, part.folds)
    raise ValueError(f"unknown part shape {part.shape!r}")


def _wall_breaks(a: np.ndarray, b: np.ndarray, rects: list[tuple[float, float, float, float]]) -> np.ndarray:
    """Where along the wall a -> b (fractions, sorted, 0 and 1 included) a floor rectangle's corner lies:
    the wall is meshed in pieces between them so that its bottom nodes match the floor's edge nodes."""
    direction = b - a
    length = float(np.linalg.norm(direction))
    cuts = {0.0, 1.0}
    for x0, y0, x1, y1 in rects:
        for corner in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
            offset = np.asarray(corner) - a
            t = float(offset @ direction) / length**2
            if 1e-9 < t < 1 - 1e-9 and abs(direction[0] * offset[1] - direction[1] * offset[0]) / length < 1e-9:
                cuts.add(t)
    return np.array(sorted(cuts))


def _room_mesh(layout: Layout, h: float, rng: np.random.Generator):
    """Floor and walls (inner sides only, open top), welded along their shared edges."""
    width, depth, height = layout.size
    corners = (np.array([[0.0, 0.0], [width, 0.0], [width, depth], [0.0, depth]]) if layout.corners is None
               else layout.corners)
    rects = [(0.0, 0.0, width, depth)] if layout.floor_rects is None else layout.floor_rects
    pieces = [primitives.grid_patch(np.array([x0, y0, 0.0]), np.array([x1 - x0, 0, 0.0]), np.array([0, y1 - y0, 0.0]),
                                    h, rng) for x0, y0, x1, y1 in rects]
    instance_of = [layout.floor_instance] * len(rects)
    for k in range(len(corners)):
        a, b = corners[k], corners[(k + 1) % len(corners)]
        cuts = _wall_breaks(a, b, rects)
        for t0, t1 in zip(cuts[:-1], cuts[1:]):
            # u = up, v = along the wall: u x v is the inward normal for a counter-clockwise room.
            up, along = np.array([0.0, 0.0, height]), np.array([*((t1 - t0) * (b - a)), 0.0])
            pieces.append(primitives.grid_patch(np.array([*(a + t0 * (b - a)), 0.0]), up, along, h, rng))
            instance_of.append(layout.wall_instances[k])
    offsets = np.cumsum([0] + [len(v) for v, _ in pieces])
    vertices = np.concatenate([v for v, _ in pieces])
    faces = np.concatenate([f + o for (_, f), o in zip(pieces, offsets)])
    piece_of = np.repeat(np.arange(len(pieces)), [len(v) for v, _ in pieces])
    vertices, faces, first = primitives.weld_coincident(vertices, faces)
    instances = np.array(instance_of)[piece_of[first]]
    materials = np.where(instances == layout.floor_instance, layout.floor_material, layout.wall_material)
    return vertices, faces, instances, materials, piece_of[first]


def build_mesh(layout: Layout, h: float, rng: np.random.Generator) -> RawMesh:
    """Mesh every part of the layout at vertex spacing ``h`` and weld the contacts."""
    room_v, room_f, room_inst, room_mat, room_part = _room_mesh(layout, h, rng)
    vertices, faces, instance, material, part_id = [room_v], [room_f], [room_inst], [room_mat], [room_part]
    count, next_part = len(room_v), int(room_part.max()) + 1
    contacts: list[_Contact] = []
    for obj in layout.objects:
        for part in obj.parts:
            local = _mesh_part(part, h, rng)
            rotation = _rotation_z(part.yaw)
            world = local.vertices @ rotation.T + np.asarray(part.center)
            for face, support in part.contacts:
                ring = local.openings[face]
                normal = rotation @ np.asarray(_FACE_NORMALS[face])
                offset = float(np.mean(world[ring] @ normal))
                contacts.append(_Contact(ring + count, support, next_part, normal, offset))
            vertices.append(world)
            faces.append(local.faces + count)
            instance.append(np.full(len(world), obj.instance))
            material.append(np.full(len(world), part.material))
            part_id.append(np.full(len(world), next_part))
            count += len(world)
            next_part += 1
    mesh = RawMesh(np.concatenate(vertices), np.concatenate(faces), np.concatenate(instance), np.concatenate(material))
    return _weld_contacts(mesh, np.concatenate(part_id), contacts, h)


def _plane_basis(normal: np.ndarray) -> np.ndarray:
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(normal, helper)
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(normal, e1)], 1)


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    p = vertices[faces]
    return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def _weld_contacts(mesh: RawMesh, part_id: np.ndarray, contacts: list[_Contact], h: float) -> RawMesh:
    n = len(mesh.vertices)
    remap = np.arange(n)
    deleted = np.zeros(n, dtype=bool)
    merged = np.zeros(n, dtype=bool)
    on_ring = np.zeros(n, dtype=bool)
    for contact in contacts:
        on_ring[contact.ring] = True
    # Only support vertices near a rim can be hidden by it or merged into it: look them up in a tree
    # (in index order, so that ties break as in a scan of all the support's vertices).
    tree = cKDTree(mesh.vertices)

    for contact in contacts:
        ring = mesh.vertices[contact.ring]
        centre = ring.mean(axis=0)
        reach = float(np.linalg.norm(ring - centre, axis=1).max()) + 1.01 * h
        candidates = np.sort(np.asarray(tree.query_ball_point(centre, reach), dtype=np.int64))
        candidates = candidates[(mesh.instance[candidates] == contact.support) & (part_id[candidates] != contact.part) & ~deleted[candidates] & ~merged[candidates]
                                & ~on_ring[candidates]]
        candidates = candidates[np.abs(mesh.vertices[candidates] @ contact.normal - contact.offset) < _PLANE_TOLERANCE]
        if len(candidates) == 0:
            continue
        basis = _plane_basis(contact.normal)
        ring_2d = mesh.vertices[contact.ring] @ basis
        cand_2d = mesh.vertices[candidates] @ basis
        try:
            hull = ConvexHull(ring_2d)
            # Support vertices well inside the opening are hidden under the resting part.
            inside = np.all(cand_2d @ hull.equations[:, :2].T + hull.equations[:, 2] < -0.3 * h, axis=1)
        except QhullError:
            inside = np.zeros(len(candidates), dtype=bool)
        deleted[candidates[inside]] = True
        candidates, cand_2d = candidates[~inside], cand_2d[~inside]
        if len(candidates) == 0:
            continue
        dist, nearest = cKDTree(cand_2d).query(ring_2d, distance_upper_bound=h)
        found = np.flatnonzero(np.isfinite(dist))
        # Each support vertex merges into at most one rim vertex: the closest one.
        found = found[np.argsort(dist[found], kind="stable")]
        _, first = np.unique(nearest[found], return_index=True)
        chosen = found[first]
        targets = candidates[nearest[chosen]]
        remap[targets] = contact.ring[chosen]
        merged[targets] = True

    faces = remap[mesh.faces]
    keep = ~deleted[faces].any(axis=1)
    # A support triangle stretched onto a rim can fold over or collapse to a sliver along it: drop those.
    changed = np.flatnonzero(keep & (faces != mesh.faces).any(axis=1))
    before, after = _face_normals(mesh.vertices, mesh.faces[changed]), _face_normals(mesh.vertices, faces[changed])
    area = np.linalg.norm(after, axis=1) / 2
    keep[changed] = (np.einsum("ij,ij->i", before, after) > 0) & (area > (0.02 * h) ** 2)
    faces = faces[keep]
    used = np.unique(faces)
    new_index = np.full(n, -1, dtype=np.int64)
    new_index[used] = np.arange(len(used))
    return RawMesh(mesh.vertices[used], new_index[faces], mesh.instance[used], mesh.material[used])
