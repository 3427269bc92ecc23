"""A scan described at the level of its segments, measured once and read by the cuts and the models.

:func:`describe_segments` takes a scan and its oversegmentation and measures what every later stage
needs: each segment's geometry (:mod:`unscene3d.segments.geometry`), which segments touch and how much
(:mod:`unscene3d.segments.contacts`), and which are floor, walls or ceiling
(:mod:`unscene3d.segments.structure`). The pseudo-mask cut (:mod:`unscene3d.pseudo`) and the segment
models (:mod:`unscene3d.model`) both start from it, so the data flows one way: scan -> segments and their
graph -> cut or model -> masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from unscene3d.normals import nearest_vertices
from unscene3d.scene import Scene
from unscene3d.segments.contacts import segment_contacts, surface_edges
from unscene3d.segments.geometry import SegmentGeometry, cloud_neighbours, segment_geometry
from unscene3d.segments.structure import Structure, StructureConfig, detect_structure


@dataclass(frozen=True)
class SegmentedScan:
    """One scan's segments: ``labels`` (N,) compact segment index per vertex, their ``geometry``, the
    symmetric (S, S) ``contacts`` (surface edges crossing each border) and the ``structure`` found (None
    when it was not looked for)."""

    labels: np.ndarray
    geometry: SegmentGeometry
    contacts: scipy.sparse.csr_matrix
    structure: Structure | None

    @property
    def num_segments(self) -> int:
        return self.geometry.num_segments

    @property
    def sizes(self) -> np.ndarray:
        """(S,) vertices per segment."""
        return np.bincount(self.labels, minlength=self.num_segments)

    @property
    def is_structure(self) -> np.ndarray:
        """(S,) True for floor, wall and ceiling segments (all False when structure was not looked for)."""
        if self.structure is None:
            return np.zeros(self.num_segments, dtype=bool)
        return self.structure.is_structure


def describe_segments(
    scene: Scene,
    labels: np.ndarray,
    num_segments: int,
    *,
    structure: StructureConfig | None = None,
    find_structure: bool = True,
) -> SegmentedScan:
    """Measure the segments ``labels`` (compact index per vertex) of ``scene``: geometry, contacts and, when
    ``find_structure``, the floor, walls and ceiling (with ``structure``'s constants)."""
    labels = np.asarray(labels, dtype=np.int64)
    geometry = segment_geometry(scene, labels, num_segments)
    neighbours = cloud_neighbours(scene.num_vertices)
    nearest = nearest_vertices(scene, neighbours)[1] if not scene.has_faces and neighbours >= 1 else None
    contacts = segment_contacts(labels, *surface_edges(scene.vertices, scene.faces, nearest), num_segments)
    found = detect_structure(scene.vertices, geometry, structure) if find_structure else None
    return SegmentedScan(labels, geometry, contacts, found)
