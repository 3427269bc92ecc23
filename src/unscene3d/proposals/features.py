"""What the ranker knows about a candidate mask: a fixed vector of measurements, the same for a mesh and a cloud.

The features are chosen to survive the step from generated rooms to real scans (DESIGN.md, "Beyond the
paper"): geometry of the mask and of its border in metres, fractions and ratios rather than raw counts (a cloud
has more neighbour pairs per square metre than a mesh has edges), colour only as differences (a scan's
lighting and white balance shift absolute colour), and agreement between the partitions that proposed it.
Each feature is named in :data:`FEATURE_NAMES`; groups:

- size and shape: area, segment count, the standard deviations along the mask's principal axes and across
  its horizontal footprint, flatness and elongation;
- orientation and height: the share of up-facing and of vertical surface, the mean normal's up component,
  bottom, top, span and centroid height above the floor;
- appearance: colour spread inside the mask;
- structure: the share of the mask's area the structure detector calls floor, wall or ceiling;
- border: how much of the mask's surface graph crosses its border (isolation), and of those crossings the share
  at concave creases, to structure and to the floor; mean colour difference and normal angle across the border
  and inside; the spatial graph's affinity cut ratio;
- sources: whether the cut tree gave it (with its separation and cohesion), the share of Felzenszwalb scales
  that gave exactly it and their mean log k and log min_verts;
- stability: for IoU 0.5, 0.7 and 0.9, the share of sources (the cut tree and each scale) that propose a mask
  at least that close to it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from unscene3d.proposals.candidates import Candidates, ProposalConfig
from unscene3d.segments import FLOOR, SegmentedScan, convex_borders

FEATURE_NAMES = (
    "log_area", "log_segments", "extent_1", "extent_2", "extent_3", "flatness", "elongation",
    "footprint_1", "footprint_2",
    "up_facing", "vertical", "normal_z",
    "bottom", "top", "height_span", "centroid_height",
    "colour_spread",
    "structure_share",
    "isolation", "border_concave", "border_colour", "border_angle",
    "inner_concave", "inner_colour", "inner_angle", "single_segment",
    "border_to_structure", "border_to_floor", "affinity_cut", "colour_contrast",
    "from_cut", "separation", "cohesion", "scale_share", "scale_log_k", "scale_log_min",
    "stable_50", "stable_70", "stable_90",
)
# Two views of a candidate that share no feature: what it is (its size, shape, orientation, height, colour) and
# how it was found (its border with the rest of the scan, the partitions that proposed it, their agreement). A
# ranker trained on each view alone errs differently from the other, so a mask both call an object is far more
# often one than a mask either calls so (proposals/self_training.py measures it).
VIEWS = {
    "shape": FEATURE_NAMES[:FEATURE_NAMES.index("isolation")],
    "border": FEATURE_NAMES[FEATURE_NAMES.index("isolation"):],
}
_UP_FACING, _VERTICAL = 0.85, 0.3  # |n_z| above / below
_LAB_UNIT = 50.0  # Lab differences are divided by this, so they are about 1 between clearly different colours


def _border_and_inside(masks: np.ndarray, edge_values: scipy.sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per mask: the sum of ``edge_values`` over segment pairs crossing its border, and over pairs inside it."""
    reached = np.asarray((scipy.sparse.csr_matrix(masks, dtype=np.float64) @ edge_values).todense())
    inside = masks.astype(np.float64)
    return (reached * (1.0 - inside)).sum(axis=1), (reached * inside).sum(axis=1) / 2.0


def _stability(candidates: Candidates, sizes: np.ndarray) -> np.ndarray:
    """(K, 3) the share of sources that propose a mask with vertex IoU >= 0.5 / 0.7 / 0.9 to each candidate."""
    weighted = candidates.masks.astype(np.float64) * np.sqrt(sizes)[None]
    intersection = weighted @ weighted.T
    size = np.diag(intersection)
    iou = intersection / np.maximum(size[:, None] + size[None] - intersection, 1e-12)
    sources = np.column_stack([candidates.from_cut, candidates.from_scale]).astype(np.float64)
    sources = sources[:, sources.any(axis=0)]
    if sources.shape[1] == 0:
        return np.zeros((len(candidates), 3))
    return np.column_stack([((iou >= t) @ sources > 0).mean(axis=1) for t in (0.5, 0.7, 0.9)])


def candidate_features(segments: SegmentedScan, candidates: Candidates, config: ProposalConfig) -> np.ndarray:
    """(K, len(FEATURE_NAMES)) float32 features of each candidate (module docstring)."""
    geometry = segments.geometry
    masks = candidates.masks
    inside = masks.astype(np.float64)
    area = geometry.area
    total = np.maximum(inside @ area, 1e-12)
    centroid = inside @ (area[:, None] * geometry.centroid) / total[:, None]
    # second moments of every segment about the origin, pooled by area (parallel axis rule)
    own = np.einsum("sij,sj,skj->sik", geometry.axes, geometry.eigenvalues, geometry.axes)
    moment = own + geometry.centroid[:, :, None] * geometry.centroid[:, None, :]
    covariance = (inside @ (area[:, None] * moment.reshape(-1, 9))).reshape(-1, 3, 3) / total[:, None, None]
    covariance -= centroid[:, :, None] * centroid[:, None, :]
    extents = np.sqrt(np.clip(np.linalg.eigvalsh(covariance)[:, ::-1], 0.0, None))
    footprint = np.sqrt(np.clip(np.linalg.eigvalsh(covariance[:, :2, :2])[:, ::-1], 0.0, None))
    largest = np.maximum(extents[:, 0], 1e-6)

    normal = geometry.unit_normal
    up_facing = inside @ (area * (np.abs(normal[:, 2]) > _UP_FACING)) / total
    vertical = inside @ (area * (np.abs(normal[:, 2]) < _VERTICAL)) / total
    normal_z = inside @ (area * normal[:, 2]) / total
    bottom = np.where(masks, geometry.bottom[None], np.inf).min(axis=1) - geometry.floor
    top = np.where(masks, geometry.top[None], -np.inf).max(axis=1) - geometry.floor
    lab = inside @ (area[:, None] * geometry.lab) / total[:, None]
    lab_square = inside @ (area[:, None] * (geometry.lab_std**2 + geometry.lab**2)) / total[:, None]
    colour_spread = np.sqrt(np.clip(lab_square - lab**2, 0.0, None)).mean(axis=1)
    structure = segments.is_structure.astype(np.float64)
    floor = np.zeros(segments.num_segments) if segments.structure is None else \
        (segments.structure.kinds == FLOOR).astype(np.float64)

    contacts = segments.contacts.tocoo()
    rows, cols, count = contacts.row, contacts.col, contacts.data

    def edges(values: np.ndarray) -> scipy.sparse.csr_matrix:
        return scipy.sparse.csr_matrix((count * values, (rows, cols)), shape=contacts.shape)

    concave = ~convex_borders(geometry, rows, cols)
    colour_difference = np.linalg.norm(geometry.lab[rows] - geometry.lab[cols], axis=1) / _LAB_UNIT
    angle = np.arccos(np.clip(np.einsum("ij,ij->i", normal[rows], normal[cols]), -1.0, 1.0))
    border, inner = _border_and_inside(masks, edges(np.ones(len(rows))))
    border_concave, inner_concave = _border_and_inside(masks, edges(concave.astype(np.float64)))
    border_colour, inner_colour = _border_and_inside(masks, edges(colour_difference))
    border_angle, inner_angle = _border_and_inside(masks, edges(angle))
    to_structure, _ = _border_and_inside(masks, edges(structure[cols]))
    to_floor, _ = _border_and_inside(masks, edges(floor[cols]))
    affinity_border, affinity_inner = _border_and_inside(masks, candidates.affinity)
    per_border, per_inner = np.maximum(border, 1e-12), np.maximum(inner, 1e-12)
    mean_border_colour = border_colour / per_border
    mean_inner_colour = inner_colour / per_inner

    scales = np.asarray(config.scales, dtype=np.float64).reshape(-1, 2)
    from_scale = candidates.from_scale.astype(np.float64)
    scale_count = from_scale.sum(axis=1)
    per_scale = np.maximum(scale_count, 1.0)
    scale_log_k = np.where(scale_count > 0, from_scale @ np.log(scales[:, 0]) / per_scale, 0.0) if len(scales) else \
        np.zeros(len(masks))
    scale_log_min = np.where(scale_count > 0, from_scale @ np.log(scales[:, 1]) / per_scale, 0.0) if len(scales) else \
        np.zeros(len(masks))

    features = np.column_stack([
        np.log(total), np.log(inside.sum(axis=1)), extents, extents[:, 2] / largest, extents[:, 1] / largest,
        footprint,
        up_facing, vertical, normal_z,
        bottom, top, top - bottom, centroid[:, 2] - geometry.floor,
        colour_spread / _LAB_UNIT * 2.5,
        inside @ (area * structure) / total,
        border / np.maximum(border + 2.0 * inner, 1e-12), border_concave / per_border, mean_border_colour,
        border_angle / per_border,
        inner_concave / per_inner, mean_inner_colour, inner_angle / per_inner, (inner == 0).astype(np.float64),
        to_structure / per_border, to_floor / per_border,
        affinity_border / np.maximum(affinity_border + 2.0 * affinity_inner, 1e-12),
        mean_border_colour / (mean_inner_colour + 0.1),
        candidates.from_cut, candidates.separation, candidates.cohesion,
        scale_count / max(len(scales), 1), scale_log_k, scale_log_min,
        _stability(candidates, segments.sizes.astype(np.float64)),
    ])
    return features.astype(np.float32)
