"""Procedural indoor scenes with ground truth: the demo's default input and the tests' workhorse.

``make_training_scene(seed)`` (:mod:`unscene3d.synthetic.scanlike`) makes scenes that look like real scans
instead, for training: rooms of several shapes and tabletops, dressed with props, seen by a simulated
scanner (holes, noise, uneven density), as meshes or point clouds.

``make_synthetic_scene(seed)`` builds a furnished room as one scan-like triangle mesh (z up, floor at
z = 0, metres) with per-vertex colours and benchmark ground truth ``label * 1000 + instance``, and
optionally renders posed RGB-D frames of it. The same seed gives bit-identical arrays; other seeds
give other rooms (size, which objects, where, turned how, how big, what colour).

What a room holds (NYU40 labels; counts seen over seeds 0-199):

==============  =====  ===============================================================  =====
object          label  built from                                                       count
==============  =====  ===============================================================  =====
wall            1      4 inner wall sheets, open top (void in the benchmark)            4
floor           2      one sheet with a plank texture (void in the benchmark)           1
cabinet         3      box against a wall with 1-2 door panels; clutter on top          0-2
bed             4      frame, mattress, headboard against a wall                        0-1
chair           5      seat, 4 legs (square or round), backrest; around the table       1-7
                       (some pushed in, backrest touching the top), at the desk, loose
sofa            6      seat block, backrest, 2 armrests, against a wall                 0-1
table           7      top on 4 legs, or round top on a pole and foot; clutter on top   0-1
door            8      slab standing on the floor against a wall                        1
window          9      panel on a wall                                                  0-1
bookshelf       10     sides, back, plinth, 2-5 boards; clutter on the boards           1-2
picture         11     thin panel on a wall with a blocky print                         1-2
desk            14     table against a wall; clutter on it                              0-1
curtain         16     folded sheet beside the window (hangs free: not welded)          0-2
refrigerator    24     tall box against a wall with a door panel                        0-1
otherfurniture  39     clutter (boxes, cylinders) on tables, desks, shelves, cabinets;  4-17
                       stacks of 1-3 boxes and bins on the floor
==============  =====  ===============================================================  =====

Instance ids: objects 1..K, then the walls K+1..K+4 and the floor K+5 (unique in the scene, as in
ScanNet, though the structure labels are void for the benchmark). At the default vertex spacing every
object has more than 100 vertices (at least 115 over seeds 0-199), so all count in the evaluation; a
coarser ``vertex_spacing`` can push small clutter under that limit. A room has 55k-88k vertices
(mean 71k) and 12-31 objects at the default spacing.

Mesh: every primitive face is an irregular triangulation (jittered grid, random diagonals; Delaunay
disks for cylinder caps) at ``vertex_spacing``; hidden faces (under or behind a part) are not
meshed and the opening is welded onto the support, so the room is one connected surface like a
ScanNet reconstruction; curtains, which hang, are the exception. Vertices then get sensor-like
noise along their normals (white plus a slow waviness), colours get a texture, baked shading and
jitter; about one object in four has a colour close to the wall's or floor's.
"""

from __future__ import annotations

import numpy as np

from unscene3d.scene import Frame, Scene
from unscene3d.synthetic.appearance import add_sensor_noise, vertex_colors, vertex_normals
from unscene3d.synthetic.assemble import build_mesh
from unscene3d.synthetic.layout import Layout, generate_layout, ground_truth
from unscene3d.synthetic.render import place_cameras, render_frames
from unscene3d.synthetic.scanlike import make_training_scene

__all__ = ["make_synthetic_scene", "make_training_scene", "synthetic_layout", "Layout"]

# Independent random streams, so e.g. the noise level never changes the layout or the triangulation.
_STREAMS = ("layout", "mesh", "noise", "color", "camera")


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children)}


def synthetic_layout(seed: int = 0) -> Layout:
    """The room plan that ``make_synthetic_scene(seed)`` meshes: room size, objects with their
    labels, instance ids, parts (world coordinates) and supports."""
    return generate_layout(_streams(seed)["layout"])


def make_synthetic_scene(
    seed: int = 0,
    *,
    with_frames: bool = False,
    num_frames: int = 8,
    image_size: tuple[int, int] = (320, 240),
    vertex_spacing: float = 0.035,
    noise: float = 0.002,
) -> Scene:
    """Generate a furnished room as a :class:`~unscene3d.scene.Scene` with ground truth.

    Args:
        seed: selects the room; equal seeds give bit-identical scenes.
        with_frames: also render ``num_frames`` posed colour + depth frames (in memory).
        image_size: (width, height) of the frames in pixels.
        vertex_spacing: grid step of the triangulation in metres (median edge about 1.15 times it).
        noise: scale (metres) of the surface noise along the normals; 0 for exact geometry.
    """
    rng = _streams(seed)
    layout = generate_layout(rng["layout"])
    raw = build_mesh(layout, vertex_spacing, rng["mesh"])
    vertices = add_sensor_noise(raw.vertices, vertex_normals(raw.vertices, raw.faces), noise, rng["noise"])
    normals = vertex_normals(vertices, raw.faces)
    colors = vertex_colors(vertices, normals, raw.material, layout.materials, rng["color"])
    frames: list[Frame] = []
    if with_frames:
        poses, intrinsic = place_cameras(layout, num_frames, image_size, rng["camera"])
        frames = render_frames(vertices, raw.faces, colors, poses, intrinsic, image_size)
    return Scene(
        name=f"synthetic_{seed:04d}",
        vertices=vertices,
        faces=raw.faces,
        colors=colors,
        frames=frames,
        gt=ground_truth(layout, raw.instance),
    )
