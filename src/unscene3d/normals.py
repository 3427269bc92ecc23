"""Neighbourhood graphs and normals for point clouds (scans without faces).

A cloud is first reduced to one point per occupied voxel (the mean of its points), so that density
(a Kinect frame holds 10x more points per square metre than a ScanNet mesh) does not change what a
neighbourhood means; everything is computed on the voxel points and carried back to every input point.

Normals are the direction of least variance of each voxel point's k nearest neighbours (PCA). PCA gives
a line, not a direction, so the sign is chosen:

* towards the sensor when its position is known (a single depth frame): exact for what one view sees;
* otherwise by propagation over a minimum spanning tree of the neighbour graph weighted by
  ``1 - |n_i . n_j|`` (Hoppe et al. 1992), which makes neighbouring normals agree; each connected part then
  gets the sign that makes most of its horizontal surfaces face up (floors and table tops are seen from
  above in indoor scans), or, with no horizontal surface, faces the cloud's centre (the room's inside).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np

from unscene3d.errors import InputError
from unscene3d.oversegment import check_positions
from unscene3d.scene import Scene
from unscene3d.threads import process_threads

log = logging.getLogger(__name__)

DEFAULT_VOXEL_SIZE = 0.02
# 8 neighbours: on scene0000_00's vertices the segments agree best with the mesh path's at this k
# (docs/benchmarks.md, "Point clouds"); a mesh vertex has about 6 edges.
DEFAULT_NEIGHBOURS = 8
# An edge may be this many voxel sizes long, or this many median nearest-neighbour gaps on clouds
# sparser than the voxel grid (a decimated mesh's vertices are 3-8 cm apart), whichever is longer.
EDGE_VOXELS = 3.0
EDGE_GAPS = 3.0
# A normal within ~37 degrees of vertical counts as a horizontal surface in the orientation vote.
_HORIZONTAL_NZ = 0.8


@dataclass(frozen=True)
class PointGraph:
    """A cloud's voxel points and their neighbour graph.

    ``voxel_of_point``: (N,) index of each input point's voxel point; ``points``: (M, 3) float64 voxel points
    (means); ``neighbours``: (M, k) int64 indices of each voxel point's nearest other voxel points, ``M`` where
    there is none within ``max_edge``; ``voxel_size`` and ``max_edge`` in the cloud's units (metres);
    ``edge_a``, ``edge_b``: (E,) int32 the graph's undirected edges, ``a < b``, each once, sorted.
    """

    voxel_of_point: np.ndarray
    points: np.ndarray
    neighbours: np.ndarray
    voxel_size: float
    max_edge: float
    edge_a: np.ndarray
    edge_b: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class CloudGraph:
    """A cloud's neighbour graph with the oriented normals of its voxel points ((M, 3) float64)."""

    graph: PointGraph
    normals: np.ndarray

    def point_normals(self) -> np.ndarray:
        """(N, 3) float32: each input point's voxel point's normal."""
        return self.normals[self.graph.voxel_of_point].astype(np.float32)


def _undirected_edges(neighbours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = len(neighbours)
    rows = np.repeat(np.arange(count, dtype=np.int64), neighbours.shape[1])
    cols = neighbours.reshape(-1)
    keep = cols < count
    lo = np.minimum(rows[keep], cols[keep])
    hi = np.maximum(rows[keep], cols[keep])
    codes = np.sort(lo * count + hi)  # a plain sort and a neighbour test: np.unique's hashing is 10x slower
    codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])] if len(codes) else codes
    return (codes // count).astype(np.int32), (codes % count).astype(np.int32)


def check_cloud(points: np.ndarray, source: object = None) -> np.ndarray:
    """The points as contiguous float64 (N, 3); an :class:`InputError` for clouds nothing can be made of."""
    points = check_positions(points, source, what="point")
    if len(points) < 2:
        raise InputError(source, f"a point cloud needs at least 2 points, this one has {len(points)}")
    if not np.ptp(points, axis=0).any():
        raise InputError(source, f"all {len(points)} points are at the same position")
    return np.ascontiguousarray(points, dtype=np.float64)


def voxel_downsample(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """``(voxel_of_point (N,) int64, voxel means (M, 3) float64)``; voxels numbered by first point."""
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise InputError(None, f"voxel size must be a positive number, got {voxel_size}")
    keys = np.floor((points - points.min(axis=0)) / voxel_size).astype(np.int64)
    spans = keys.max(axis=0) + 1
    if float(np.prod(spans.astype(np.float64))) < 2.0**62:
        # One int64 per voxel sorts far faster than rows of three.
        codes = (keys[:, 0] * spans[1] + keys[:, 1]) * spans[2] + keys[:, 2]
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    # Renumber voxels by their first point, so the numbering follows the input order.
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    voxel_of_point = rank[inverse]
    counts = np.bincount(voxel_of_point, minlength=len(first)).astype(np.float64)
    means = np.stack(
        [np.bincount(voxel_of_point, weights=points[:, d], minlength=len(first)) for d in range(3)], axis=1
    )
    return voxel_of_point, means / counts[:, None]


def neighbour_graph(
    points: np.ndarray,
    *,
    voxel_size: float = DEFAULT_VOXEL_SIZE,
    neighbours: int = DEFAULT_NEIGHBOURS,
    source: object = None,
) -> PointGraph:
    """Voxel-downsample ``points`` and link each voxel point to its ``neighbours`` nearest (see module doc)."""
    points = check_cloud(points, source)
    if int(neighbours) != neighbours or neighbours < 3:
        raise InputError(None, f"neighbours must be an integer >= 3, got {neighbours}")
    from scipy.spatial import cKDTree  # on use: scipy adds a fifth of a second to every command's start-up

    voxel_of_point, voxel_points = voxel_downsample(points, voxel_size)
    tree = cKDTree(voxel_points)
    k = min(int(neighbours) + 1, len(voxel_points))
    distances, index = tree.query(voxel_points, k=k, workers=process_threads())
    distances, index = distances.reshape(len(voxel_points), k), index.reshape(len(voxel_points), k)
    nearest_gap = float(np.median(distances[:, 1])) if k > 1 else 0.0  # k is 1 when one voxel holds all
    max_edge = max(EDGE_VOXELS * voxel_size, EDGE_GAPS * nearest_gap)
    index = np.where(distances <= max_edge, index, len(voxel_points))
    # Column 0 is the point itself (distance 0) unless voxel means coincide; drop self wherever it is (a row
    # holds it at most once), or the last column where the row does not hold it.
    self_hits = index == np.arange(len(voxel_points))[:, None]
    dropped = np.where(self_hits.any(axis=1), self_hits.argmax(axis=1), k - 1)
    kept = np.arange(k - 1)[None, :]
    index = np.take_along_axis(index, kept + (kept >= dropped[:, None]), axis=1).astype(np.int64)
    edge_a, edge_b = _undirected_edges(index)
    return PointGraph(voxel_of_point, voxel_points, index, float(voxel_size), max_edge, edge_a, edge_b)


def pca_normals(graph: PointGraph) -> np.ndarray:
    """(M, 3) unit normals of the voxel points, unoriented; (0, 0, 1) where a point has < 2 neighbours."""
    covariance, weight = neighbourhood_covariances(graph.points, graph.neighbours)
    _, vectors = np.linalg.eigh(covariance)
    normals = vectors[:, :, 0]
    normals[weight < 3] = (0.0, 0.0, 1.0)
    return normals


@numba.njit(cache=True, nogil=True)
def neighbourhood_covariances(points: np.ndarray, neighbours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(covariance (M, 3, 3), size (M,))`` of each point with its neighbours (``neighbours`` (M, k), ``M`` where
    none). In one pass, with numpy's operations and order of the vectorised form (a (M, k + 1, 3) gather with
    missing members zeroed, sums over members, ``einsum("nki,nkj->nij")``): the same bits, 15x faster."""
    count, k = neighbours.shape
    covariance = np.empty((count, 3, 3))
    weight = np.empty(count)
    cloud = np.empty((k + 1, 3))
    valid = np.empty(k + 1)
    for n in range(count):
        for j in range(k + 1):
            member = n if j == 0 else neighbours[n, j - 1]
            valid[j] = 1.0 if member < count else 0.0
            for d in range(3):
                cloud[j, d] = points[member, d] if member < count else 0.0
        total = valid[0]
        for j in range(1, k + 1):
            total = total + valid[j]
        weight[n] = total
        for d in range(3):
            mean = cloud[0, d] * valid[0]
            for j in range(1, k + 1):
                mean = mean + cloud[j, d] * valid[j]
            mean = mean / total
            for j in range(k + 1):
                cloud[j, d] = (cloud[j, d] - mean) * valid[j]
        for a in range(3):
            for b in range(3):
                product = 0.0
                for j in range(k + 1):
                    product = product + cloud[j, a] * cloud[j, b]
                covariance[n, a, b] = product / total
    return covariance, weight


@numba.njit(cache=True, nogil=True)
def _propagate_signs(indptr: np.ndarray, indices: np.ndarray, normals: np.ndarray) -> np.ndarray:
    # Breadth-first over each tree of the spanning forest, flipping a child to agree with its parent;
    # returns each node's tree id.
    count = normals.shape[0]
    component = np.full(count, -1, dtype=np.int64)
    queue = np.empty(count, dtype=np.int64)
    trees = 0
    for root in range(count):
        if component[root] >= 0:
            continue
        component[root] = trees
        head, tail = 0, 1
        queue[0] = root
        while head < tail:
            node = queue[head]
            head += 1
            for j in range(indptr[node], indptr[node + 1]):
                child = indices[j]
                if component[child] >= 0:
                    continue
                component[child] = trees
                dot = normals[node, 0] * normals[child, 0] + normals[node, 1] * normals[child, 1]
                dot += normals[node, 2] * normals[child, 2]
                if dot < 0:
                    normals[child, 0] = -normals[child, 0]
                    normals[child, 1] = -normals[child, 1]
                    normals[child, 2] = -normals[child, 2]
                queue[tail] = child
                tail += 1
        trees += 1
    return component


def _orientation_costs(points: np.ndarray, normals: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Hoppe's 1 - |n_a.n_b|, plus how far the edge leaves both tangent planes: the two faces of a thin
    # board have parallel normals, and an edge across the board must not carry the sign over.
    step = points[b] - points[a]
    step /= np.maximum(np.linalg.norm(step, axis=1, keepdims=True), 1e-12)
    parallel = np.abs(np.einsum("ij,ij->i", normals[a], normals[b]))
    leaves = np.abs(np.einsum("ij,ij->i", step, normals[a])) + np.abs(np.einsum("ij,ij->i", step, normals[b]))
    return 1.0 - parallel + leaves + 1e-6  # 0 would mean "no edge" to scipy


def orient_normals(graph: PointGraph, normals: np.ndarray, sensor: np.ndarray | None = None) -> np.ndarray:
    """Give PCA normals a consistent sign (see the module docstring); returns a new (M, 3) array."""
    normals = np.array(normals, dtype=np.float64, copy=True)
    if sensor is not None:
        away = np.einsum("ij,ij->i", normals, np.asarray(sensor, dtype=np.float64) - graph.points) < 0
        normals[away] *= -1
        return normals
    import scipy.sparse.csgraph

    a, b = graph.edge_a, graph.edge_b
    weights = _orientation_costs(graph.points, normals, a, b)
    count = graph.num_nodes
    tree = scipy.sparse.csgraph.minimum_spanning_tree(
        scipy.sparse.coo_matrix((weights, (a, b)), shape=(count, count)).tocsr()
    )
    tree = (tree + tree.T).tocsr()
    component = _propagate_signs(tree.indptr.astype(np.int64), tree.indices.astype(np.int64), normals)
    trees = int(component.max()) + 1
    nz = normals[:, 2]
    facing_up = (nz > _HORIZONTAL_NZ).astype(float) - (nz < -_HORIZONTAL_NZ)
    up_votes = np.bincount(component, weights=facing_up, minlength=trees)
    inward = np.sign(np.einsum("ij,ij->i", normals, graph.points.mean(axis=0) - graph.points))
    inward_votes = np.bincount(component, weights=inward, minlength=trees)
    flip = np.where(up_votes != 0, up_votes < 0, inward_votes < 0)
    normals[flip[component]] *= -1
    return normals


def cloud_graph(
    points: np.ndarray,
    *,
    voxel_size: float = DEFAULT_VOXEL_SIZE,
    neighbours: int = DEFAULT_NEIGHBOURS,
    sensor: np.ndarray | None = None,
    source: object = None,
) -> CloudGraph:
    """The neighbour graph of ``points`` (:func:`neighbour_graph`) and its oriented normals."""
    graph = neighbour_graph(points, voxel_size=voxel_size, neighbours=neighbours, source=source)
    return CloudGraph(graph, orient_normals(graph, pca_normals(graph), sensor))


def scene_graph(scene: Scene, *, voxel_size: float = DEFAULT_VOXEL_SIZE,
                neighbours: int = DEFAULT_NEIGHBOURS) -> CloudGraph:
    """:func:`cloud_graph` of a point cloud scan (normals towards its sensor when it knows it), built once per
    scan and setting: the oversegmentation, the Felzenszwalb candidates and the segment geometry all read it."""
    def build() -> CloudGraph:
        built = cloud_graph(scene.vertices, voxel_size=voxel_size, neighbours=neighbours, sensor=scene.sensor,
                            source=scene.source or scene.name)
        for array in (*vars(built.graph).values(), built.normals):
            if isinstance(array, np.ndarray):
                array.flags.writeable = False  # shared by every stage of the scan
        return built

    return scene.derived(("cloud_graph", float(voxel_size), int(neighbours)), build)


def nearest_vertices(scene: Scene, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, index)``, (N, count + 1) each: every vertex's nearest vertices, usually itself first;
    queried once per scan (a point cloud's per-point area and its contacts both read them)."""
    def query() -> tuple[np.ndarray, np.ndarray]:
        from scipy.spatial import cKDTree

        distances, index = cKDTree(scene.vertices).query(scene.vertices, k=count + 1, workers=process_threads())
        distances.flags.writeable = index.flags.writeable = False
        return distances, index

    return scene.derived(("nearest_vertices", int(count)), query)


def estimate_normals(
    points: np.ndarray,
    *,
    voxel_size: float = DEFAULT_VOXEL_SIZE,
    neighbours: int = DEFAULT_NEIGHBOURS,
    sensor: np.ndarray | None = None,
    source: object = None,
) -> np.ndarray:
    """(N, 3) float32 oriented unit normals of every input point (its voxel point's normal)."""
    return cloud_graph(points, voxel_size=voxel_size, neighbours=neighbours, sensor=sensor,
                       source=source).point_normals()


def scene_normals(scene: Scene) -> np.ndarray:
    """(N, 3) float32 normals for any scan: its own, the Segmentator's vertex normals of a mesh, or
    estimated ones (:func:`scene_graph`'s, towards the sensor when the scan knows it) for a point cloud."""
    if scene.normals is not None:
        return np.asarray(scene.normals, dtype=np.float32)
    if scene.has_faces:
        from unscene3d.oversegment import compute_vertex_normals

        return compute_vertex_normals(scene.vertices, scene.faces)
    return scene_graph(scene).point_normals()
