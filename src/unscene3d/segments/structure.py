"""Scene structure: find the floor, the walls and the ceiling, so the cuts leave them out.

Floor, walls and ceiling are void in the ScanNet protocol, yet they are most of a room's surface,
so a cut over all segments finds them first (DESIGN.md, "Why the faithful path scores 0 here").
Here they are found as large planes, before any cut:

1. Plane hypotheses come from flat segments (thickness across their best-fit plane under
   ``max_thickness``, area over ``min_seed_area``), largest first. A hypothesis covered mostly by an
   earlier plane's inliers is skipped.
2. A plane's inliers are the vertices within ``inlier_distance`` of it whose normal is within about
   37 degrees of its normal; its support is their area (at least ``min_plane_area``).
3. The plane is the **floor** when it is horizontal at the floor height (the lowest well-populated
   up-facing level); the **ceiling** when it faces up or down and its inliers lie more than
   ``ceiling_clearance`` above the floor; a **wall** when it is vertical, its inliers span at least
   ``wall_height`` in height and ``wall_length`` along the floor, and little lies behind it: a
   wardrobe front or a fridge door is as tall as a wall, but the wall stands behind it. "Behind" is
   counted on a grid of the plane's own inliers (``behind_cell``): the fraction of occupied cells
   with scan points between ``behind_min`` and ``behind_max`` behind the plane's front face.
4. A segment belongs to a structural plane when most of its area lies within ``member_distance``
   of it and its mean normal is parallel to it. On walls, a member must also look like the wall
   (Lab distance to the wall's median colour under ``wall_colour_distance``) unless it is large
   (``large_member_area``): doors, windows, whiteboards and pictures lie in the wall's plane too, but
   usually differ in colour.

The rules aim at precision: a wall piece left in is harmless in the evaluation (a mask mostly on void
is ignored) but an object taken for structure is lost. The up axis is +z.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unscene3d.segments.geometry import SegmentGeometry

STRUCTURE_KINDS = ("object", "floor", "wall", "ceiling")
OBJECT, FLOOR, WALL, CEILING = range(4)


@dataclass(frozen=True)
class StructureConfig:
    """Constants of the structure detector (metres, square metres, CIE Lab units)."""

    max_thickness: float = 0.03
    min_seed_area: float = 0.25
    inlier_distance: float = 0.05
    inlier_normal_cosine: float = 0.8
    min_plane_area: float = 1.0
    floor_tolerance: float = 0.1
    ceiling_clearance: float = 1.8
    wall_height: float = 1.5
    wall_length: float = 1.5
    behind_min: float = 0.08
    behind_max: float = 1.0
    behind_cell: float = 0.2
    max_behind_fraction: float = 0.3
    member_distance: float = 0.08
    member_fraction: float = 0.6
    member_normal_cosine: float = 0.85
    wall_colour_distance: float = 12.0
    large_member_area: float = 1.0


@dataclass(frozen=True)
class Plane:
    """A structural plane ``normal . x = offset`` and the area of its inliers."""

    kind: str
    normal: tuple[float, float, float]
    offset: float
    support: float


@dataclass(frozen=True)
class Structure:
    """Which segments are structure: ``kinds`` (S,) int8 index into :data:`STRUCTURE_KINDS`."""

    kinds: np.ndarray
    planes: list[Plane] = field(default_factory=list)

    @property
    def is_structure(self) -> np.ndarray:
        return self.kinds != OBJECT

    def summary(self) -> dict[str, int]:
        return {name: int((self.kinds == k).sum()) for k, name in enumerate(STRUCTURE_KINDS) if k != OBJECT}


def _cells(along: np.ndarray, height: np.ndarray, cell: float) -> np.ndarray:
    """(P, 2) int64 (along, height) grid cell of each point."""
    return np.floor(np.stack([along / cell, height / cell], axis=1)).astype(np.int64)


def _fraction_behind(
    vertices: np.ndarray, inliers: np.ndarray, depth: np.ndarray, along_axis: np.ndarray, config: StructureConfig
) -> float:
    """Fraction of the plane's occupied (along, height) cells with scan points behind its front (``depth``:
    each vertex's signed distance in front of it)."""
    occupied = _cells(vertices[inliers] @ along_axis, vertices[inliers, 2], config.behind_cell)
    behind = (depth < -config.behind_min) & (depth > -config.behind_max)
    hidden = _cells(vertices[behind] @ along_axis, vertices[behind, 2], config.behind_cell)
    if not len(occupied) or not len(hidden):
        return 0.0
    # each cell as one integer, so that the sets are sorted arrays, not rows
    low = np.minimum(occupied.min(axis=0), hidden.min(axis=0))
    span = np.maximum(occupied.max(axis=0), hidden.max(axis=0)) - low + 1
    codes = [(c[:, 0] - low[0]) * span[1] + (c[:, 1] - low[1]) for c in (occupied, hidden)]
    occupied_codes = np.unique(codes[0])
    return len(np.intersect1d(occupied_codes, codes[1])) / len(occupied_codes)


def _classify(
    vertices: np.ndarray,
    normals: np.ndarray,
    inliers: np.ndarray,
    normal: np.ndarray,
    offset: float,
    projection: np.ndarray,
    geometry: SegmentGeometry,
    config: StructureConfig,
) -> int:
    heights = vertices[inliers, 2]
    up = abs(normal[2])
    if up > 0.9 and abs(np.median(heights) - geometry.floor) < config.floor_tolerance:
        return FLOOR
    if up > 0.7 and np.percentile(heights, 5) > geometry.floor + config.ceiling_clearance:
        return CEILING
    if up < 0.15:
        along_axis = np.cross(normal, [0.0, 0.0, 1.0])
        along = vertices[inliers] @ (along_axis / np.linalg.norm(along_axis))
        height_span = np.percentile(heights, 98) - np.percentile(heights, 2)
        length = np.percentile(along, 99) - np.percentile(along, 1)
        if height_span < config.wall_height or length < config.wall_length:
            return OBJECT
        # the side the surface faces: where its own normals point
        side = 1.0 if (normals[inliers] @ normal).mean() >= 0 else -1.0
        front = side * normal
        along_axis = np.cross(front, [0.0, 0.0, 1.0])
        along_axis /= np.linalg.norm(along_axis)
        # (x.n - o) with n and o negated is exactly its negation: no second pass over the scan
        depth = side * projection - side * offset
        if _fraction_behind(vertices, inliers, depth, along_axis, config) < config.max_behind_fraction:
            return WALL
    return OBJECT


def detect_structure(
    vertices: np.ndarray, geometry: SegmentGeometry, config: StructureConfig | None = None
) -> Structure:
    """Label each segment floor, wall, ceiling or object (see the module docstring for the rules)."""
    config = config or StructureConfig()
    vertices = np.asarray(vertices, dtype=np.float64)
    labels, count = geometry.labels, geometry.num_segments
    normals, weight = geometry.vertex_normals, geometry.vertex_area
    kinds = np.zeros(count, dtype=np.int8)
    planes: list[Plane] = []
    if count == 0:
        return Structure(kinds, planes)
    seeds = np.flatnonzero((geometry.area > config.min_seed_area) & (geometry.thickness < config.max_thickness))
    seeds = seeds[np.argsort(-geometry.area[seeds], kind="stable")]
    claimed = np.zeros(len(vertices), dtype=bool)
    segment_normal = geometry.unit_normal
    by_segment = np.argsort(labels, kind="stable")  # each segment's vertices in order, without a pass per seed
    starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=count))])
    for seed in seeds:
        if claimed[by_segment[starts[seed]:starts[seed + 1]]].mean() > 0.5:
            continue
        normal = geometry.plane_normal[seed]
        offset = float(normal @ geometry.centroid[seed])
        projection = vertices @ normal
        distance = np.abs(projection - offset)
        inliers = (distance < config.inlier_distance) & (np.abs(normals @ normal) > config.inlier_normal_cosine)
        claimed |= inliers
        support = float(weight[inliers].sum())
        if support < config.min_plane_area:
            continue
        kind = _classify(vertices, normals, inliers, normal, offset, projection, geometry, config)
        if kind == OBJECT:
            continue
        near = np.bincount(labels, weight * (distance < config.member_distance), count)
        members = (near > config.member_fraction * geometry.area) & (
            np.abs(segment_normal @ normal) > config.member_normal_cosine
        )
        if kind == WALL:
            wall_colour = np.median(geometry.vertex_lab[inliers], axis=0)
            alike = np.linalg.norm(geometry.lab - wall_colour, axis=1) < config.wall_colour_distance
            members &= alike | (geometry.area > config.large_member_area)
        members &= kinds == OBJECT
        kinds[members] = kind
        planes.append(Plane(STRUCTURE_KINDS[kind], tuple(float(x) for x in normal), offset, support))
    return Structure(kinds, planes)
