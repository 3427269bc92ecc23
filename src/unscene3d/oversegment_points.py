"""Oversegmentation of point clouds, and the one oversegmentation entry point every stage calls.

A point cloud has no mesh edges, so the graph is the voxel points' nearest-neighbour graph
(:mod:`unscene3d.normals`), weighted by the mesh path's own edge weights (``"scannet"``:
``1 - n_a.n_b``, squared when convex; ``"unscene3d"``: times the colour L1, squared only when convex and
the colours are close) on estimated, oriented normals and voxel-mean colours, and segmented by the mesh
path's Felzenszwalb union-find. Segment sizes (``min_verts``, the ``k/|C|`` threshold) count voxel points,
so they measure area whatever the sensor's density. Each input point takes its voxel point's segment.

Unlike the mesh path this is not a port of a reference tool: the edges are sorted with a stable sort,
and ``seg_ids`` (the ScanNet-style segment id) is the index of the segment's first input point.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from unscene3d.errors import InputError
from unscene3d.normals import DEFAULT_NEIGHBOURS, DEFAULT_VOXEL_SIZE, CloudGraph, cloud_graph, scene_graph
from unscene3d.oversegment import (
    COLOUR_CONVEX_LIMIT,
    Segmentation,
    _adjacency_from_edges,
    _check_colors,
    _check_mesh,
    _graph,
    _kernels,
    _root_labels,
    _std_sort_order,
    compact_labels,
    felzenszwalb_params,
    oversegment,
)
from unscene3d.oversegment_kernels import edge_weights, felzenszwalb
from unscene3d.scene import Scene
from unscene3d.threads import process_threads

log = logging.getLogger(__name__)


def oversegment_points(
    points: np.ndarray,
    colors: np.ndarray | None = None,
    *,
    variant: str = "scannet",
    k_thresh: float | None = None,
    min_verts: int | None = None,
    voxel_size: float = DEFAULT_VOXEL_SIZE,
    neighbours: int = DEFAULT_NEIGHBOURS,
    sensor: np.ndarray | None = None,
    source: object = None,
) -> Segmentation:
    """Felzenszwalb segments of a point cloud (module docstring); one label per input point.

    ``k_thresh``/``min_verts`` default to the mesh path's values for the variant; ``min_verts`` counts voxel
    points. ``sensor`` (3,) orients the normals towards it (a single depth frame). Raises
    :class:`InputError` for clouds with NaN points, fewer than 2 distinct points, or bad parameters.
    """
    k_thresh, min_verts = felzenszwalb_params(variant, k_thresh, min_verts)
    colours01 = _check_colors(colors, len(points)) if variant == "unscene3d" else None
    graph = cloud_graph(points, voxel_size=voxel_size, neighbours=neighbours, sensor=sensor, source=source)
    return _segment_cloud(graph, colours01, variant, k_thresh, min_verts, neighbours)


def _segment_cloud(cloud: CloudGraph, colours01: np.ndarray | None, variant: str, k_thresh: float, min_verts: int,
                   neighbours: int) -> Segmentation:
    graph = cloud.graph
    normals = cloud.normals.astype(np.float32)
    edge_a, edge_b = graph.edge_a, graph.edge_b
    if colours01 is None:
        node_colours = None
    else:
        counts = np.bincount(graph.voxel_of_point, minlength=graph.num_nodes).astype(np.float64)
        node_colours = np.stack(
            [np.bincount(graph.voxel_of_point, weights=colours01[:, d], minlength=graph.num_nodes) for d in range(3)],
            axis=1,
        )
        node_colours = (node_colours / counts[:, None]).astype(np.float32)
    # The weight kernel works in float32 like the mesh path's: centred first, so that georeferenced clouds
    # (LAS coordinates in the millions) keep millimetres.
    node_points = (graph.points - graph.points.mean(axis=0)).astype(np.float32)
    # The mesh path's numba kernels: a cloud's neighbour graph needs numba anyway.
    weights = edge_weights(node_points, normals, node_colours, edge_a, edge_b, COLOUR_CONVEX_LIMIT)
    order = stable_order(weights)
    roots = felzenszwalb(graph.num_nodes, edge_a, edge_b, weights, order, np.float32(k_thresh), int(min_verts))
    node_labels, num_segments = compact_labels(roots)
    adjacency = _adjacency_from_edges(node_labels, edge_a, edge_b) if len(edge_a) else np.empty((0, 2), np.int64)

    # Number segments by their first input point, like seg_ids; the adjacency follows.
    point_labels = node_labels[graph.voxel_of_point]
    first = np.full(num_segments, len(point_labels), dtype=np.int64)
    np.minimum.at(first, point_labels, np.arange(len(point_labels)))
    rank = np.empty(num_segments, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(num_segments)
    labels = rank[point_labels]
    adjacency = np.sort(rank[adjacency], axis=1) if len(adjacency) else adjacency
    adjacency = adjacency[np.lexsort((adjacency[:, 1], adjacency[:, 0]))]
    seg_ids = np.sort(first)[labels]
    log.debug(
        "oversegmented %d points (%d voxel points, %d edges) into %d segments",
        len(labels), graph.num_nodes, len(edge_a), num_segments,
    )
    params = {
        "kThresh": float(k_thresh),
        "segMinVerts": int(min_verts),
        "variant": variant,
        "graph": "points",
        "voxelSize": float(graph.voxel_size),
        "neighbours": int(neighbours),
        "maxEdge": graph.max_edge,
        "voxelPoints": graph.num_nodes,
    }
    return Segmentation(seg_ids=seg_ids, labels=labels, adjacency=adjacency, num_segments=num_segments, params=params)


def stable_order(weights: np.ndarray) -> np.ndarray:
    """(E,) int32 ``np.argsort(weights, kind="stable")`` of finite float32 weights, 3x faster: each weight's bits,
    mapped to an unsigned integer of the same order, above its index, sorted as one int64 (a SIMD sort, where
    numpy's stable sort of floats is a merge sort)."""
    if len(weights) >= 2**31 or not np.isfinite(weights).all():
        return np.argsort(weights, kind="stable").astype(np.int32)
    bits = (np.asarray(weights, dtype=np.float32) + np.float32(0.0)).view(np.uint32)  # + 0: -0 sorts as 0
    ordered = np.where(bits >> np.uint32(31), ~bits, bits | np.uint32(0x80000000)).astype(np.uint64)
    keys = (ordered << np.uint64(32)) | np.arange(len(weights), dtype=np.uint64)
    keys.sort()
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.int32)


def oversegment_scene(
    scene: Scene,
    *,
    variant: str = "scannet",
    k_thresh: float | None = None,
    min_verts: int | None = None,
    voxel_size: float | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
) -> Segmentation:
    """Oversegment any scan: a mesh by the exact ScanNet Segmentator path (:func:`unscene3d.oversegment.oversegment`,
    ``voxel_size``/``neighbours`` unused), a point cloud by :func:`oversegment_points` (``voxel_size`` None: 2 cm)."""
    where = scene.source or scene.name
    colors = scene.colors if variant == "unscene3d" else None
    try:
        if scene.has_faces:
            return oversegment(scene.vertices, scene.faces, colors, variant=variant, k_thresh=k_thresh,
                               min_verts=min_verts)
        k_thresh, min_verts = felzenszwalb_params(variant, k_thresh, min_verts)
        colours01 = _check_colors(colors, scene.num_vertices) if variant == "unscene3d" else None
        graph = scene_graph(scene, voxel_size=DEFAULT_VOXEL_SIZE if voxel_size is None else voxel_size,
                            neighbours=neighbours)
        return _segment_cloud(graph, colours01, variant, k_thresh, min_verts, neighbours)
    except InputError as error:
        if error.path is not None:
            raise
        raise InputError(where, error.problem) from None


def felzenszwalb_scales(scene: Scene, scales: Sequence[tuple[float, int]], *,
                        voxel_size: float | None = None, neighbours: int = DEFAULT_NEIGHBOURS) -> list[np.ndarray]:
    """Segments of the ``scannet`` variant at several ``(k_thresh, min_verts)`` scales, one graph for all.

    The graph, its normals and edge weights and the edge order depend on neither setting, so they are built
    once and only the union-find runs per scale. Each returned (N,) array of compact labels holds the
    partition :func:`oversegment_scene` gives at that scale (a mesh's exactly the C++ Segmentator's), numbered
    by increasing root id."""
    where = scene.source or scene.name
    try:
        if scene.has_faces:
            points, faces = _check_mesh(scene.vertices, scene.faces)
            edge_a, edge_b, weights = _graph(points, faces, None)
            order, nodes, node_of_point = _std_sort_order(weights), len(points), None
            union_find = _kernels().felzenszwalb
        else:
            cloud = scene_graph(scene, voxel_size=DEFAULT_VOXEL_SIZE if voxel_size is None else voxel_size,
                                neighbours=neighbours)
            graph, normals = cloud.graph, cloud.normals.astype(np.float32)
            edge_a, edge_b = graph.edge_a, graph.edge_b
            centred = (graph.points - graph.points.mean(axis=0)).astype(np.float32)
            weights = edge_weights(centred, normals, None, edge_a, edge_b, COLOUR_CONVEX_LIMIT)
            order = stable_order(weights)
            union_find = felzenszwalb
            nodes, node_of_point = graph.num_nodes, graph.voxel_of_point
    except InputError as error:
        if error.path is not None:
            raise
        raise InputError(where, error.problem) from None
    def partition(setting: tuple[float, int]) -> np.ndarray:
        roots = union_find(nodes, edge_a, edge_b, weights, order, np.float32(setting[0]), setting[1])
        compact = _root_labels(roots)[0]
        return compact if node_of_point is None else compact[node_of_point]

    settings = [felzenszwalb_params("scannet", k_thresh, min_verts) for k_thresh, min_verts in scales]
    # The union-find kernels release the GIL (numba nogil, or C through ctypes): one thread per core.
    with ThreadPoolExecutor(max(1, min(len(settings), process_threads()))) as pool:
        return list(pool.map(partition, settings))
