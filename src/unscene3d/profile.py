"""What a scan is, read from its data: units, up axis, kind (room or tabletop) and colour.

Every command reads scans through :func:`unscene3d.io.scan.load_scan`, which infers a :class:`ScanProfile`
here and turns the scan into the project's working frame with it: z up, and lengths in "room metres".

- **Units**: a scan whose robust extent is over :data:`_MILLIMETRE_EXTENT` units is read as millimetres, one
  under :data:`_KILOMETRE_EXTENT` as kilometres (1,000x too small); beyond either it is refused with the
  ``--scale`` to use.
- **Kind**: a point cloud under :data:`TABLETOP_MAX_EXTENT` metres across is a tabletop (a depth frame of a
  table at about 1 m); anything larger, and any mesh, a room (``--kind tabletop`` says otherwise).
- **Up axis**: ``--up``, else the format's convention (glTF is y up, an organized PCD is a camera frame), else
  the floor: of the six axis directions, the one with the most horizontal surface at its bottom and the least
  at its top (floors are scanned, ceilings mostly not; a wall faces sideways on both sides). A tabletop is
  then levelled on its support plane, the largest plane facing that way.
- **Scale of the settings**: the stages' sizes (2 cm voxels, segment sizes, the size priors, the model of
  objects' features, floor and wall rules) are set for rooms. A tabletop is enlarged by
  ``1 / TABLETOP_LENGTH_SCALE`` into room metres, so that one set of settings serves both; its support plane
  then plays the floor. Rooms in metres, z up, keep exactly their coordinates.
- **Colour**: a scan without colours, or with one colour everywhere, is geometry-only: the stages'
  colour terms then fall away (the oversegmentation uses the geometric ScanNet weights).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from unscene3d.errors import InputError

log = logging.getLogger(__name__)

KINDS = ("auto", "room", "tabletop")
UP_AXES = ("z", "y", "-y", "x", "-x", "-z")
# Proper rotations taking each up axis to +z (normals and handedness are kept).
TO_Z_UP = {
    "z": np.eye(3),
    "y": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
    "-y": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "x": np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]]),
    "-x": np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]),
    "-z": np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]]),
}
# A tabletop frame spans about 1 m (mOSD: 0.9-1.2 m), an indoor room 3-30 m.
TABLETOP_MAX_EXTENT = 2.5
# Metres of a tabletop per room metre: its 5-30 cm objects then measure like furniture. Measured on the four mOSD
# frames (docs/benchmarks.md, "Scan profiles"): 0.33-0.25 keep every frame's AP50 >= 50 for both the baseline and
# the pseudo masks; 0.125 over-splits.
TABLETOP_LENGTH_SCALE = 0.25
_MILLIMETRE_EXTENT = 200.0  # no indoor scan spans 200 m; a room in millimetres spans thousands of units
# Points of a scan in millimetres lie at least half a unit apart (a Kinect at 1 m: 1.5 mm); a large scan in
# metres (an outdoor LAS) is sampled far more densely than a unit.
_MILLIMETRE_SPACING = 0.3
_KILOMETRE_EXTENT = 0.02  # 2 cm is no scan in metres; 0.002-0.02 units is a room in kilometres
_FACING = 0.9  # |cos| of a surface facing along an axis
_END_FRACTION = 0.1  # the bottom / top tenth of the scan along an axis
_MIN_FLOOR_EVIDENCE = 0.05  # of the surface: a floor less than this is not evidence
_PLANE_DISTANCE = 0.01  # metres, a tabletop's support-plane inliers (Kinect noise at 1 m: a few mm)
_PLANE_MAX_TILT = 0.5  # cos 60 deg: the support plane faces roughly up
_SAMPLE = 20_000
# A scan holds 10^4-10^6 points; a handful says nothing about a floor, a support plane or a colour scheme.
_MIN_POINTS = 1000


@dataclass(frozen=True)
class ProfileRequest:
    """What the user fixed with ``--up``, ``--scale`` and ``--kind``; None / ``auto`` is inferred."""

    up: str | None = None
    scale: float | None = None
    kind: str = "auto"

    def __post_init__(self) -> None:
        if self.up is not None and self.up not in UP_AXES:
            raise InputError(None, f"up axis must be one of {', '.join(UP_AXES)}, got {self.up!r}")
        if self.scale is not None and not (np.isfinite(self.scale) and self.scale > 0):
            raise InputError(None, f"scale must be a positive number, got {self.scale}")
        if self.kind not in KINDS:
            raise InputError(None, f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def load_options(self) -> dict:
        """Keyword arguments of :func:`~unscene3d.io.scan.load_scan`."""
        return {"up": self.up, "scale": self.scale, "kind": self.kind}


@dataclass(frozen=True)
class ScanProfile:
    """What was inferred about one scan, and how it was turned into the working frame.

    ``rotation`` (3, 3) turns file coordinates z up; working coordinates are
    ``rotation @ x * units_scale / length_scale``. ``spacing`` (median nearest-neighbour distance) and
    ``extent`` (the largest 1st-99th percentile range of an axis) are in metres.
    """

    units_scale: float
    units_reason: str
    up: str
    up_reason: str
    rotation: np.ndarray
    kind: str
    kind_reason: str
    has_colour: bool
    colour_reason: str
    spacing: float
    extent: float
    length_scale: float = 1.0

    @property
    def working_factor(self) -> float:
        return self.units_scale / self.length_scale

    def is_identity(self) -> bool:
        return self.working_factor == 1.0 and bool((self.rotation == np.eye(3)).all())

    def describe(self) -> str:
        """One line: what was inferred, why, and the flag that overrides each."""
        working = (f"; enlarged {1 / self.length_scale:g}x to room scale for the settings"
                   if self.length_scale != 1.0 else "")
        return (f"units {_units_name(self.units_scale)} ({self.units_reason}; --scale), up {self.up} "
                f"({self.up_reason}; --up), {self.kind} ({self.kind_reason}; --kind){working}, "
                f"{'colour' if self.has_colour else 'no colour: geometry-only affinities and baselines'} "
                f"({self.colour_reason}); {self.extent:.2f} m across, points {1000 * self.spacing:.1f} mm apart")


def default_profile() -> ScanProfile:
    """The profile of a scan made in code: metres, z up, a room, as given."""
    return ScanProfile(1.0, "as given", "z", "as given", np.eye(3), "room", "as given", True, "as given", 0.0, 0.0)


def infer_profile(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    normals: np.ndarray | None,
    colors: np.ndarray | None,
    format_up: str | None = None,
    format_up_reason: str = "",
    request: ProfileRequest = ProfileRequest(),
    source: object = None,
) -> ScanProfile:
    """The profile of a scan in file coordinates (module docstring); ``format_up`` is the format's convention.

    Raises:
        InputError: the units cannot be recognised (the message names the ``--scale`` to use).
    """
    extent_units, spacing_units = _robust_extent(vertices), _spacing(vertices, faces)
    units_scale, units_reason = _units(extent_units, spacing_units, request.scale, source)
    extent, spacing = extent_units * units_scale, spacing_units * units_scale
    if request.kind != "auto":
        kind, kind_reason = request.kind, "as given"
    elif len(faces):  # a mesh's oversegmentation counts vertices, not area: it needs no rescaling to work
        kind, kind_reason = "room", "a mesh"
    elif len(vertices) < _MIN_POINTS:
        kind, kind_reason = "room", f"fewer than {_MIN_POINTS} points, too few to tell"
    elif extent < TABLETOP_MAX_EXTENT:
        kind, kind_reason = "tabletop", f"a point cloud under {TABLETOP_MAX_EXTENT:g} m across"
    else:
        kind, kind_reason = "room", f"over {TABLETOP_MAX_EXTENT:g} m across"
    if request.up is not None:
        up, up_reason = request.up, "as given"
    elif format_up is not None:
        up, up_reason = format_up, format_up_reason
    elif len(vertices) < _MIN_POINTS:
        up, up_reason = "z", f"the project's convention (fewer than {_MIN_POINTS} points to find a floor)"
    else:
        up, up_reason = _floor_axis(vertices, faces, normals)
    rotation = TO_Z_UP[up]
    if kind == "tabletop" and request.up is None:
        # with no axis to go by (a cloud without normals), the largest plane of any orientation
        guided = format_up is not None or up_reason.startswith("the floor")
        levelled = _support_plane(vertices @ rotation.T * units_scale, guided)
        if levelled is not None:
            rotation = levelled[0] @ rotation
            up, up_reason = "support plane", f"{levelled[1]:.0%} of the points, {up_reason}"
    has_colour, colour_reason = _colour(colors)
    return ScanProfile(units_scale, units_reason, up, up_reason, rotation, kind, kind_reason, has_colour,
                       colour_reason, spacing, extent, TABLETOP_LENGTH_SCALE if kind == "tabletop" else 1.0)


def _units_name(scale: float) -> str:
    names = {1.0: "metres", 0.001: "millimetres", 0.01: "centimetres", 1000.0: "kilometres"}
    return names.get(scale, f"x{scale:g} to metres")


def _units(extent: float, spacing: float, given: float | None, source: object) -> tuple[float, str]:
    if given is not None:
        return given, "as given"
    if extent > _MILLIMETRE_EXTENT and spacing < _MILLIMETRE_SPACING:
        return 1.0, f"{extent:.0f} units across but points {spacing:.2g} apart: a large scan in metres"
    if extent > _MILLIMETRE_EXTENT:
        if extent * 0.001 > _MILLIMETRE_EXTENT:
            raise InputError(source, f"spans {extent:.3g} units, too large for metres or millimetres: pass --scale "
                                     "(the factor to metres)")
        return 0.001, f"{extent:.0f} units across, too large for metres; --scale 0.01 if centimetres"
    if extent < _KILOMETRE_EXTENT:
        if extent * 1000 < _KILOMETRE_EXTENT:
            raise InputError(source, f"spans {extent:.3g} units, too small for metres or kilometres: pass --scale "
                                     "(the factor to metres)")
        return 1000.0, f"{extent:.3g} units across, too small for metres"
    return 1.0, f"{extent:.3g} units across"


def _robust_extent(vertices: np.ndarray) -> float:
    sample = _subsample(vertices)
    low, high = np.percentile(sample, [1, 99], axis=0)
    extent = float((high - low).max())
    return extent if extent > 0 else float(np.ptp(vertices, axis=0).max())


def _subsample(values: np.ndarray, count: int = _SAMPLE) -> np.ndarray:
    if len(values) <= count:
        return values
    return values[np.random.default_rng(0).choice(len(values), count, replace=False)]


def _spacing(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Median distance between neighbouring points: a mesh's edge length (no scipy: a mesh's commands do not
    start it), a cloud's nearest neighbour."""
    if len(faces):
        edges = vertices[faces[:, 0]] - vertices[faces[:, 1]]
        return float(np.median(np.linalg.norm(_subsample(edges), axis=1)))
    if len(vertices) < 2:
        return 0.0
    from scipy.spatial import cKDTree

    distances, _ = cKDTree(vertices).query(_subsample(vertices, 2000), k=2)
    return float(np.median(distances[:, 1]))


def _colour(colors: np.ndarray | None) -> tuple[bool, str]:
    if colors is None:
        return False, "the scan has none"
    if len(colors) >= _MIN_POINTS and not np.ptp(colors, axis=0).any():
        return False, "one colour everywhere"
    return True, "from the scan"


def _surface_elements(
    vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(positions, unit normals, weights) of the scan's surface: a mesh's faces by area, a cloud's points
    with normals; None for a cloud without normals."""
    if len(faces):
        corners = vertices[faces]
        cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        area = np.linalg.norm(cross, axis=1)
        return corners.mean(axis=1), cross / np.maximum(area, 1e-30)[:, None], area
    if normals is None:
        return None
    keep = np.isfinite(normals).all(axis=1)
    length = np.linalg.norm(normals[keep], axis=1)
    return vertices[keep], normals[keep] / np.maximum(length, 1e-30)[:, None], (length > 0).astype(np.float64)


def _floor_axis(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None) -> tuple[str, str]:
    """The up axis whose bottom holds the most horizontal surface (a floor) and whose top the least.

    Normals' signs are not used (a mesh's winding or an estimated normal may point either way)."""
    elements = _surface_elements(vertices, faces, normals)
    if elements is None:
        return "z", "the project's convention (a point cloud without normals); pass --up if it stands on its side"
    positions, unit, weight = elements
    total = weight.sum()
    if total <= 0:
        return "z", "the project's convention (no surface to find a floor on)"
    evidence = {}
    for axis_index, name in enumerate("xyz"):
        facing = np.abs(unit[:, axis_index]) > _FACING
        height = positions[:, axis_index]
        low, high = np.percentile(height, [1, 99])
        band = _END_FRACTION * (high - low)
        bottom = weight[facing & (height < low + band)].sum() / total
        top = weight[facing & (height > high - band)].sum() / total
        evidence[name], evidence[f"-{name}"] = bottom - top, top - bottom
    best = max(evidence, key=lambda axis: evidence[axis])
    if evidence[best] < _MIN_FLOOR_EVIDENCE:
        return "z", "the project's convention (no floor found); pass --up if it stands on its side"
    if best != "z" and evidence["z"] >= 0.5 * evidence[best]:
        best = "z"  # the convention, unless the data clearly says otherwise
    return best, f"the floor: {evidence[best]:.0%} of the surface faces along it at the bottom"


def _support_plane(points: np.ndarray, guided: bool) -> tuple[np.ndarray, float] | None:
    """The rotation levelling the largest plane of ``points`` (metres), and the fraction of the points on it;
    None when there is none. ``guided``: z is roughly up, and the plane must face within 60 degrees of it;
    otherwise up is the plane's side holding most of the other points (objects stand on it). RANSAC on a
    fixed-seed sample, then a least-squares fit."""
    sample = _subsample(points)
    if len(sample) < 3:
        return None
    rng = np.random.default_rng(0)
    best_count, best_normal, best_point = 0, None, None
    for _ in range(200):
        a, b, c = sample[rng.choice(len(sample), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        length = np.linalg.norm(normal)
        if length < 1e-12 or (guided and abs(normal[2]) / length < _PLANE_MAX_TILT):
            continue
        normal = normal / length
        count = int((np.abs((sample - a) @ normal) < _PLANE_DISTANCE).sum())
        if count > best_count:
            best_count, best_normal, best_point = count, normal, a
    if best_normal is None:
        return None
    inliers = sample[np.abs((sample - best_point) @ best_normal) < _PLANE_DISTANCE]
    centre = inliers.mean(axis=0)
    normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][2]
    if guided:
        normal = normal if normal[2] > 0 else -normal
    else:
        height = (sample - centre) @ normal
        off_plane = height[np.abs(height) > _PLANE_DISTANCE]
        normal = normal if (off_plane > 0).sum() >= (off_plane < 0).sum() else -normal
    return _rotation_to_z(normal), len(inliers) / len(sample)


def _rotation_to_z(normal: np.ndarray) -> np.ndarray:
    """The smallest rotation taking the unit vector ``normal`` to +z (Rodrigues; a half turn about x for -z)."""
    if normal[2] < -1 + 1e-9:
        return TO_Z_UP["-z"]
    axis = np.cross(normal, [0.0, 0.0, 1.0])
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + cross + cross @ cross / (1.0 + normal[2])
