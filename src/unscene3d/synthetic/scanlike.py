"""Generated training scenes that look like real scans: ``make_training_scene(seed)``.

A scene is a room (rectangular, 2.8 x 2.8 m to 7 x 6 m), an L-shaped room, or a tabletop (a table with
boxes and cylinders, seen in one Kinect-like frame), furnished and dressed with props, then *scanned*
(:mod:`unscene3d.synthetic.scanner`): only what some camera pose saw is kept. It comes as

- a **mesh**: the seen part of the surface, holes where no view reached or depth fails (glass, black
  screens, random dropouts), noise along the normals growing with the distance it was seen from, plus a
  slow warp, as a fused reconstruction has;
- a **point cloud**, either the seen mesh's vertices (as datasets ship clouds made from meshes), or the
  depth pixels of every view back-projected with sensor noise and thinned to one point per 0.8-2 cm voxel
  (a tabletop keeps its one frame whole, with the sensor position).

Colours: the materials' textures under randomised lighting (1-3 ceiling lights with falloff, ambient,
a white-balance tint, exposure); each view of a cloud, and the view that saw a mesh vertex closest,
adds its own exposure and white balance; one scene in ten has no colour.

Ground truth as :func:`~unscene3d.synthetic.make_synthetic_scene`: ``label * 1000 + instance`` per point,
every point labelled (walls 1, floor 2), objects 1..K, then the walls and the floor. An object that the
scanner saw with fewer than :data:`MIN_OBJECT_POINTS` points keeps its label but no instance (as the
benchmark ignores such objects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unscene3d.scene import Scene
from unscene3d.synthetic.appearance import vertex_colors, vertex_normals, wave_field
from unscene3d.synthetic.assemble import build_mesh
from unscene3d.synthetic.layout import WINDOW, Layout, ground_truth
from unscene3d.synthetic.render import camera_intrinsic, look_at, object_boxes
from unscene3d.synthetic.scanlike_layout import ROOM_KINDS, scanlike_layout
from unscene3d.synthetic.scanner import Views, depth_points, seen_vertices, voxel_first, walk_poses

MIN_OBJECT_POINTS = 100
_STREAMS = ("choice", "layout", "mesh", "scan", "noise", "color")
# Share of each kind when none is asked for.
_KIND_WEIGHTS = (0.45, 0.35, 0.2)
_MAX_RAW_VERTICES = 160_000
_DARK = 60  # materials darker than this (in every channel) return little infrared light


@dataclass(frozen=True)
class ScanStyle:
    """How one scene is scanned and delivered; drawn from the seed."""

    kind: str
    as_cloud: bool
    cloud_from_depth: bool
    vertex_spacing: float
    views: int
    image_size: tuple[int, int]
    voxel: float
    coloured: bool


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence([seed, 16]).spawn(len(_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children)}


def _style(rng: np.random.Generator, kind: str | None, as_cloud: bool | None) -> ScanStyle:
    kind = ROOM_KINDS[int(rng.choice(len(ROOM_KINDS), p=_KIND_WEIGHTS))] if kind is None else kind
    cloud = bool(rng.random() < 0.5) if as_cloud is None else as_cloud
    from_depth = bool(rng.random() < 0.5)
    coloured = bool(rng.random() >= 0.1)
    if kind == "tabletop":
        return ScanStyle(kind, cloud, True, float(rng.uniform(0.012, 0.018)), 1, (320, 240), 0.0, coloured)
    return ScanStyle(kind, cloud, from_depth, float(rng.uniform(0.028, 0.042)), int(rng.integers(8, 14)),
                     (160, 120), float(rng.uniform(0.008, 0.02)), coloured)


def _spacing(layout: Layout, drawn: float) -> float:
    """The drawn vertex spacing, coarsened in large rooms so that the unscanned mesh stays near
    :data:`_MAX_RAW_VERTICES` vertices (time and memory grow with it, not with the room)."""
    width, depth, height = layout.size
    floor = width * depth if layout.floor_rects is None else sum((x1 - x0) * (y1 - y0)
                                                                  for x0, y0, x1, y1 in layout.floor_rects)
    surface = 2.5 * floor + 2 * (width + depth) * height  # furniture roughly doubles the floor's area
    return max(drawn, float(np.sqrt(1.15 * surface / _MAX_RAW_VERTICES)))


def _lighting(vertices: np.ndarray, normals: np.ndarray, layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) multiplicative light per vertex: ambient plus ceiling lights with distance falloff, tinted."""
    width, depth, height = layout.size
    count = int(rng.integers(1, 4))
    lights = np.column_stack([rng.uniform(0.2, 0.8, (count, 2)) * [width, depth], np.full(count, height - 0.1)])
    ambient = rng.uniform(0.45, 0.7)
    light = np.full(len(vertices), ambient)
    for position in lights:
        offset = position - vertices
        distance = np.linalg.norm(offset, axis=1)
        facing = np.clip(np.einsum("ij,ij->i", normals, offset) / np.maximum(distance, 1e-6), 0.0, 1.0)
        light += rng.uniform(0.4, 0.8) * facing / (1.0 + (distance / rng.uniform(2.0, 4.0)) ** 2)
    tint = 1.0 + rng.normal(0, 0.05, 3)
    return light[:, None] * tint * rng.uniform(0.8, 1.2)


def _view_gains(count: int, rng: np.random.Generator) -> np.ndarray:
    """Per view (count, 3): auto exposure and white balance drifting from frame to frame."""
    return rng.uniform(0.85, 1.15, (count, 1)) * (1.0 + rng.normal(0, 0.03, (count, 3)))


def _tabletop_view(layout: Layout, rng: np.random.Generator, image_size: tuple[int, int]) -> Views:
    """One frame from a person's height at a table's edge, looking down onto the table."""
    table = layout.objects[0].parts[0]
    center = np.array(table.center)
    angle = table.yaw + rng.choice([-1, 1]) * np.pi / 2 + rng.uniform(-0.5, 0.5)
    reach = table.size[1] / 2 + rng.uniform(0.3, 0.7)
    eye = center + np.array([reach * np.cos(angle), reach * np.sin(angle), rng.uniform(0.45, 0.8)])
    target = center + np.array([*rng.uniform(-0.15, 0.15, 2), 0.0])
    return Views([look_at(eye, target)], camera_intrinsic(image_size), image_size)


def _views(layout: Layout, style: ScanStyle, rng: np.random.Generator) -> Views:
    if style.kind == "tabletop":
        return _tabletop_view(layout, rng, style.image_size)
    width, depth, _ = layout.size
    corners = (np.array([[0.0, 0.0], [width, 0.0], [width, depth], [0.0, depth]]) if layout.corners is None
               else layout.corners)
    floor = width * depth if layout.floor_rects is None else sum((x1 - x0) * (y1 - y0)
                                                                  for x0, y0, x1, y1 in layout.floor_rects)
    count = int(np.clip(style.views * floor / 20.0, 6, 16))  # a larger room takes a longer walk
    return walk_poses(corners, object_boxes(layout), count, rng, style.image_size, layout.size[2])


def _dropouts(vertices: np.ndarray, fragile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vertices lost to failed depth: patches of glass and dark surfaces, and rare blobs anywhere."""
    field = wave_field(vertices, rng, (0.15, 0.6), count=4)
    return (fragile & (field > rng.uniform(-0.5, 0.5))) | (field > rng.uniform(1.3, 1.7))


def _scanned_mesh(raw, normals, colors, gains, views, layout, rng_noise) -> tuple:
    """The seen part of the mesh, with holes and distance-dependent noise: (vertices, faces, colours, kept)."""
    seen, distance, nearest_view = seen_vertices(raw.vertices, raw.faces, views)
    labels = ground_truth(layout, raw.instance) // 1000
    dark = np.zeros(len(layout.materials), dtype=bool)
    dark[[k for k, m in enumerate(layout.materials) if max(m.rgb) < _DARK]] = True
    fragile = (labels == WINDOW) | dark[raw.material]
    seen &= ~_dropouts(raw.vertices, fragile, rng_noise)
    faces = raw.faces[seen[raw.faces].all(axis=1)]
    kept = np.unique(faces)
    index = np.full(len(raw.vertices), -1)
    index[kept] = np.arange(len(kept))
    sigma = 0.5 * (0.0012 + 0.0019 * (distance[kept] - 0.4) ** 2) + 0.001
    warp = rng_noise.uniform(0.001, 0.005) * wave_field(raw.vertices[kept], rng_noise, (0.4, 1.5))
    offset = sigma * rng_noise.normal(size=len(kept)) + warp
    vertices = raw.vertices[kept] + normals[kept] * offset[:, None]
    out_colors = None
    if colors is not None:
        shaded = colors[kept].astype(np.float64) * gains[nearest_view[kept]]
        out_colors = np.clip(np.round(shaded), 0, 255).astype(np.uint8)
    return vertices, index[faces], out_colors, kept


def _small_instances_unlabelled(gt: np.ndarray) -> np.ndarray:
    """Objects seen with fewer than MIN_OBJECT_POINTS points keep their label and lose their instance."""
    ids, counts = np.unique(gt, return_counts=True)
    small = ids[(counts < MIN_OBJECT_POINTS) & (ids % 1000 > 0)]
    return np.where(np.isin(gt, small), gt // 1000 * 1000, gt)


def make_training_scene(seed: int = 0, kind: str | None = None, as_cloud: bool | None = None) -> Scene:
    """A generated scene that looks like a real scan, with ground truth (module docstring).

    Args:
        seed: selects everything; equal seeds (and arguments) give bit-identical scenes.
        kind: one of ``room``, ``l-room``, ``tabletop``; by default drawn from the seed.
        as_cloud: a point cloud (True) or a mesh (False); by default drawn from the seed.
    """
    if kind is not None and kind not in ROOM_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ROOM_KINDS)}, got {kind!r}")
    rng = _streams(seed)
    style = _style(rng["choice"], kind, as_cloud)
    layout = scanlike_layout(style.kind, rng["layout"])
    raw = build_mesh(layout, _spacing(layout, style.vertex_spacing), rng["mesh"])
    normals = vertex_normals(raw.vertices, raw.faces)
    views = _views(layout, style, rng["scan"])
    colors = None
    gains = _view_gains(len(views.poses), rng["color"])
    if style.coloured:
        base = vertex_colors(raw.vertices, normals, raw.material, layout.materials, rng["color"])
        lit = base * _lighting(raw.vertices, normals, layout, rng["color"])
        colors = np.clip(np.round(lit), 0, 255).astype(np.uint8)
    gt_raw = ground_truth(layout, raw.instance)
    name = f"scanlike_{seed:05d}"
    sensor = None
    if style.as_cloud and style.cloud_from_depth:
        points, cloud_colors, source, _ = depth_points(raw.vertices, raw.faces, colors, views, rng["noise"], gains)
        if style.voxel > 0:
            keep = voxel_first(points, style.voxel)
            points, source = points[keep], source[keep]
            cloud_colors = cloud_colors[keep] if cloud_colors is not None else None
        else:
            sensor = views.poses[0][:3, 3].copy()
        vertices, faces, out_colors, gt = points, np.zeros((0, 3), np.int64), cloud_colors, gt_raw[source]
    else:
        vertices, faces, out_colors, kept = _scanned_mesh(raw, normals, colors, gains, views, layout, rng["noise"])
        gt = gt_raw[kept]
        if style.as_cloud:
            faces = np.zeros((0, 3), np.int64)
    suffix = ("_cloud" if style.as_cloud else "_mesh")
    return Scene(name=f"{name}_{style.kind}{suffix}", vertices=vertices, faces=faces, colors=out_colors,
                 gt=_small_instances_unlabelled(gt), sensor=sensor)
