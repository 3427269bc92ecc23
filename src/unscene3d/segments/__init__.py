"""The segment-level description of a scan: geometry, contact graph and scene structure (floor, walls,
ceiling), below both the pseudo-mask cuts and the models (:func:`describe_segments`)."""

from unscene3d.segments.contacts import convex_borders, segment_contacts, surface_edges, upper_pairs
from unscene3d.segments.geometry import SegmentGeometry, rgb_to_lab, segment_geometry
from unscene3d.segments.scan import SegmentedScan, describe_segments
from unscene3d.segments.structure import (
    CEILING,
    FLOOR,
    OBJECT,
    STRUCTURE_KINDS,
    WALL,
    Structure,
    StructureConfig,
    detect_structure,
)

__all__ = [
    "CEILING",
    "FLOOR",
    "OBJECT",
    "STRUCTURE_KINDS",
    "WALL",
    "SegmentGeometry",
    "SegmentedScan",
    "Structure",
    "StructureConfig",
    "convex_borders",
    "describe_segments",
    "detect_structure",
    "rgb_to_lab",
    "segment_contacts",
    "segment_geometry",
    "surface_edges",
    "upper_pairs",
]
