"""The mesh oversegmentation's kernels, compiled by numba: the fallback where the C extension
(``unscene3d/_segmentator.c``, loaded by :mod:`unscene3d.native`) was not built.

Both modules offer the same five functions, compute in the same float32 arithmetic and give the same segment
ids; this one costs numba's import and CPU-target start-up (about half a second) the first time it runs.
"""

from __future__ import annotations

import numba
import numpy as np

# Ranges of at most this many elements are left by libstdc++'s introsort to its final insertion sort.
_INTROSORT_THRESHOLD = 16

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


def vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) float32 vertex normals of float32 ``points`` and int32 ``faces`` (the Segmentator's rule)."""
    return _vertex_normals_kernel(points, faces)


def edge_endpoints(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int32 (a, b) of the three directed edges of each face, (i1,i2), (i1,i3), (i3,i2)."""
    return _edge_endpoints(faces)


def edge_weights(points: np.ndarray, normals: np.ndarray, colours01: np.ndarray | None, edge_a: np.ndarray,
                 edge_b: np.ndarray, colour_limit: float) -> np.ndarray:
    """float32 weight of each edge; ``colours01`` (N, 3) float32 in [0, 1] for the colour-aware variant."""
    use_colors = colours01 is not None
    colours = colours01 if use_colors else np.zeros((1, 3), dtype=np.float32)
    return _edge_weights_kernel(points, normals, colours, edge_a, edge_b, use_colors, colour_limit)


def std_sort_order(weights: np.ndarray, depth_limit: int) -> np.ndarray:
    """Permutation (int32) that libstdc++'s std::sort applies to records compared by weight only."""
    keys = np.array(weights, dtype=np.float32, copy=True)
    order = np.arange(keys.shape[0], dtype=np.int32)
    _introsort(keys, order, depth_limit)
    return order


def felzenszwalb(num_vertices: int, edge_a: np.ndarray, edge_b: np.ndarray, weights: np.ndarray, order: np.ndarray,
                 k_thresh: np.float32, min_verts: int) -> np.ndarray:
    """(N,) int64 segment ids (root vertex) of the edges taken in ``order``, small segments then merged."""
    return _felzenszwalb_kernel(num_vertices, edge_a, edge_b, weights, order, k_thresh, min_verts)


# ---------------------------------------------------------------------------------------------
# Geometry (float32 throughout, in the C++ tool's operation order)
# ---------------------------------------------------------------------------------------------


@_jit
def _vertex_normals_kernel(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    one = np.float32(1.0)
    normals = np.zeros(points.shape, dtype=np.float32)
    counts = np.zeros(points.shape[0], dtype=np.int32)
    for f in range(faces.shape[0]):
        i1, i2, i3 = faces[f, 0], faces[f, 1], faces[f, 2]
        ux = points[i2, 0] - points[i1, 0]
        uy = points[i2, 1] - points[i1, 1]
        uz = points[i2, 2] - points[i1, 2]
        vx = points[i3, 0] - points[i1, 0]
        vy = points[i3, 1] - points[i1, 1]
        vz = points[i3, 2] - points[i1, 2]
        cx = uy * vz - uz * vy
        cy = uz * vx - ux * vz
        cz = ux * vy - uy * vx
        length = np.sqrt(cx * cx + cy * cy + cz * cz)
        if not length > 0:
            # Zero-area face: the C++ tool would blend a NaN normal in; it is left out instead.
            continue
        cx /= length
        cy /= length
        cz /= length
        for v in (i1, i2, i3):
            # Running average: n = lerp(n, face_normal, 1 / (count + 1)), never renormalised.
            t = one / (np.float32(counts[v]) + one)
            s = one - t
            normals[v, 0] = t * cx + s * normals[v, 0]
            normals[v, 1] = t * cy + s * normals[v, 1]
            normals[v, 2] = t * cz + s * normals[v, 2]
            counts[v] += 1
    return normals


@_jit
def _edge_endpoints(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Three directed edges per face, (i1,i2), (i1,i3), (i3,i2); shared edges appear twice.
    num = 3 * faces.shape[0]
    a = np.empty(num, dtype=np.int32)
    b = np.empty(num, dtype=np.int32)
    for f in range(faces.shape[0]):
        a[3 * f] = faces[f, 0]
        b[3 * f] = faces[f, 1]
        a[3 * f + 1] = faces[f, 0]
        b[3 * f + 1] = faces[f, 2]
        a[3 * f + 2] = faces[f, 2]
        b[3 * f + 2] = faces[f, 1]
    return a, b


@_jit
def _edge_weights_kernel(
    points: np.ndarray,
    normals: np.ndarray,
    colors: np.ndarray,
    edge_a: np.ndarray,
    edge_b: np.ndarray,
    use_colors: bool,
    colour_limit: float,
) -> np.ndarray:
    one = np.float32(1.0)
    zero = np.float32(0.0)
    weights = np.empty(edge_a.shape[0], dtype=np.float32)
    for e in range(edge_a.shape[0]):
        a = edge_a[e]
        b = edge_b[e]
        dx = points[b, 0] - points[a, 0]
        dy = points[b, 1] - points[a, 1]
        dz = points[b, 2] - points[a, 2]
        length = np.sqrt(dx * dx + dy * dy + dz * dz)
        dx /= length
        dy /= length
        dz /= length
        dot = normals[a, 0] * normals[b, 0] + normals[a, 1] * normals[b, 1] + normals[a, 2] * normals[b, 2]
        # Convex when b's normal points away from a: a crease there matters less.
        convex = normals[b, 0] * dx + normals[b, 1] * dy + normals[b, 2] * dz > zero
        w = one - dot
        if use_colors:
            colour_dist = (
                abs(colors[a, 0] - colors[b, 0])
                + abs(colors[a, 1] - colors[b, 1])
                + abs(colors[a, 2] - colors[b, 2])
            )
            w = w * colour_dist
            # The limit is a double in UnScene3D's C++, so the comparison is done in float64.
            convex = convex and np.float64(colour_dist) < colour_limit
        if convex:
            w = w * w
        weights[e] = w
    return weights


# ---------------------------------------------------------------------------------------------
# libstdc++ std::sort (introsort), ported so that equal weights end up in the C++ tool's order
# ---------------------------------------------------------------------------------------------


@_jit
def _swap(keys: np.ndarray, items: np.ndarray, i: int, j: int) -> None:
    keys[i], keys[j] = keys[j], keys[i]
    items[i], items[j] = items[j], items[i]


@_jit
def _sift_down(keys, items, base, hole, length, key, item) -> None:
    # Move the hole down to a leaf along the larger children, then bubble (key, item) up from there.
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if keys[base + child] < keys[base + child - 1]:
            child -= 1
        keys[base + hole] = keys[base + child]
        items[base + hole] = items[base + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        keys[base + hole] = keys[base + child - 1]
        items[base + hole] = items[base + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and keys[base + parent] < key:
        keys[base + hole] = keys[base + parent]
        items[base + hole] = items[base + parent]
        hole = parent
        parent = (hole - 1) // 2
    keys[base + hole] = key
    items[base + hole] = item


@_jit
def _heap_sort(keys, items, first, last) -> None:
    # The introsort's fallback when partitioning degenerates (depth limit reached).
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _sift_down(keys, items, first, parent, length, keys[first + parent], items[first + parent])
        if parent == 0:
            break
        parent -= 1
    while last - first > 1:
        last -= 1
        key, item = keys[last], items[last]
        keys[last] = keys[first]
        items[last] = items[first]
        _sift_down(keys, items, first, 0, last - first, key, item)


@_jit
def _median_to_first(keys, items, result, a, b, c) -> None:
    if keys[a] < keys[b]:
        if keys[b] < keys[c]:
            _swap(keys, items, result, b)
        elif keys[a] < keys[c]:
            _swap(keys, items, result, c)
        else:
            _swap(keys, items, result, a)
    elif keys[a] < keys[c]:
        _swap(keys, items, result, a)
    elif keys[b] < keys[c]:
        _swap(keys, items, result, c)
    else:
        _swap(keys, items, result, b)


@_jit
def _partition(keys, items, first, last) -> int:
    # Median-of-three pivot moved to `first`, then an unguarded Hoare partition of (first, last).
    mid = first + (last - first) // 2
    _median_to_first(keys, items, first, first + 1, mid, last - 1)
    pivot = keys[first]
    lo = first + 1
    hi = last
    while True:
        while keys[lo] < pivot:
            lo += 1
        hi -= 1
        while pivot < keys[hi]:
            hi -= 1
        if not lo < hi:
            return lo
        _swap(keys, items, lo, hi)
        lo += 1


@_jit
def _insertion_sort(keys, items, first, last, guarded: bool) -> None:
    # Unguarded insertion relies on a key <= every later key somewhere before `first`.
    for i in range(first + 1 if guarded else first, last):
        key, item = keys[i], items[i]
        if guarded and key < keys[first]:
            for j in range(i, first, -1):
                keys[j] = keys[j - 1]
                items[j] = items[j - 1]
            keys[first] = key
            items[first] = item
        else:
            j = i
            while key < keys[j - 1]:
                keys[j] = keys[j - 1]
                items[j] = items[j - 1]
                j -= 1
            keys[j] = key
            items[j] = item


@_jit
def _introsort(keys: np.ndarray, items: np.ndarray, depth_limit: int) -> None:
    """Sort keys ascending in place, carrying items, exactly as libstdc++'s std::sort permutes."""
    n = keys.shape[0]
    if n < 2:
        return
    # Explicit stack of ranges (disjoint, so their processing order does not matter); each
    # partition step pushes one range and lowers the depth, so depth_limit + 1 slots suffice.
    stack_first = np.empty(depth_limit + 1, dtype=np.int64)
    stack_last = np.empty(depth_limit + 1, dtype=np.int64)
    stack_depth = np.empty(depth_limit + 1, dtype=np.int64)
    stack_first[0], stack_last[0], stack_depth[0] = 0, n, depth_limit
    top = 1
    while top > 0:
        top -= 1
        first, last, depth = stack_first[top], stack_last[top], stack_depth[top]
        while last - first > _INTROSORT_THRESHOLD:
            if depth == 0:
                _heap_sort(keys, items, first, last)
                break
            depth -= 1
            cut = _partition(keys, items, first, last)
            stack_first[top], stack_last[top], stack_depth[top] = cut, last, depth
            top += 1
            last = cut
    if n > _INTROSORT_THRESHOLD:
        _insertion_sort(keys, items, 0, _INTROSORT_THRESHOLD, True)
        _insertion_sort(keys, items, _INTROSORT_THRESHOLD, n, False)
    else:
        _insertion_sort(keys, items, 0, n, True)


# ---------------------------------------------------------------------------------------------
# Felzenszwalb union-find ("universe": union by rank, path compression of the start node only)
# ---------------------------------------------------------------------------------------------


@_jit
def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    parent[x] = root
    return root


@_jit
def _join(parent: np.ndarray, rank: np.ndarray, size: np.ndarray, x: int, y: int) -> int:
    # On equal rank the second root (y) wins, which fixes the ids the C++ tool writes.
    if rank[x] > rank[y]:
        parent[y] = x
        size[x] += size[y]
        return x
    parent[x] = y
    size[y] += size[x]
    if rank[x] == rank[y]:
        rank[y] += 1
    return y


@_jit
def _felzenszwalb_kernel(
    num_vertices: int,
    edge_a: np.ndarray,
    edge_b: np.ndarray,
    weights: np.ndarray,
    order: np.ndarray,
    k_thresh: np.float32,
    min_verts: int,
) -> np.ndarray:
    num_edges = order.shape[0]
    sorted_a = np.empty(num_edges, dtype=np.int32)
    sorted_b = np.empty(num_edges, dtype=np.int32)
    sorted_w = np.empty(num_edges, dtype=np.float32)
    for i in range(num_edges):
        e = order[i]
        sorted_a[i] = edge_a[e]
        sorted_b[i] = edge_b[e]
        sorted_w[i] = weights[e]
    parent = np.arange(num_vertices, dtype=np.int32)
    rank = np.zeros(num_vertices, dtype=np.int32)
    size = np.ones(num_vertices, dtype=np.int32)
    threshold = np.full(num_vertices, k_thresh, dtype=np.float32)
    for i in range(num_edges):
        a = _find(parent, sorted_a[i])
        b = _find(parent, sorted_b[i])
        w = sorted_w[i]
        if a != b and w <= threshold[a] and w <= threshold[b]:
            root = _join(parent, rank, size, a, b)
            threshold[root] = w + k_thresh / np.float32(size[root])
    # Second pass, same edge order: absorb segments below the minimum size into a neighbour.
    for i in range(num_edges):
        a = _find(parent, sorted_a[i])
        b = _find(parent, sorted_b[i])
        if a != b and (size[a] < min_verts or size[b] < min_verts):
            _join(parent, rank, size, a, b)
    seg_ids = np.empty(num_vertices, dtype=np.int64)
    for v in range(num_vertices):
        seg_ids[v] = _find(parent, v)
    return seg_ids
