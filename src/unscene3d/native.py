"""The mesh oversegmentation's kernels as compiled C (``_segmentator.c``), called through ctypes.

The package builds the C file as an optional extension at install time; where no C compiler was found it
is absent, :func:`available` says so, and :mod:`unscene3d.oversegment` uses the numba kernels instead
(:mod:`unscene3d.oversegment_kernels`, the same five functions and results). Loading this library takes
milliseconds, against about half a second of numba start-up.
"""

from __future__ import annotations

import ctypes
import importlib.util

import numpy as np


def _load() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("unscene3d._segmentator")  # locates the built file; ctypes loads it
    if spec is None or spec.origin is None:
        return None
    try:
        library = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    i64, f32, f64, ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_double, ctypes.c_void_p
    library.vertex_normals.argtypes = [ptr, i64, ptr, i64, ptr, ptr]
    library.edge_endpoints.argtypes = [ptr, i64, ptr, ptr]
    library.edge_weights.argtypes = [ptr, ptr, ptr, ctypes.c_int32, ptr, ptr, i64, f64, ptr]
    library.introsort.argtypes = [ptr, ptr, i64, i64]
    library.felzenszwalb.argtypes = [i64, ptr, ptr, ptr, ptr, i64, f32, i64, ptr]
    for name in ("vertex_normals", "edge_endpoints", "edge_weights"):
        getattr(library, name).restype = None
    library.introsort.restype = library.felzenszwalb.restype = ctypes.c_int
    return library


_LIBRARY = _load()


def available() -> bool:
    """Whether the C library was built and loads."""
    return _LIBRARY is not None


def _address(array: np.ndarray, dtype: type) -> int:
    """The data pointer of ``array``, which must already be C-contiguous of ``dtype`` (never a hidden copy)."""
    if array.dtype != dtype or not array.flags.c_contiguous:
        raise TypeError(f"expected a C-contiguous {np.dtype(dtype)} array, got {array.dtype}")
    return array.ctypes.data


def vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) float32 vertex normals of float32 ``points`` and int32 ``faces`` (the Segmentator's rule)."""
    normals = np.empty(points.shape, dtype=np.float32)
    counts = np.empty(points.shape[0], dtype=np.int32)
    _LIBRARY.vertex_normals(_address(points, np.float32), points.shape[0], _address(faces, np.int32),
                            faces.shape[0], _address(normals, np.float32), _address(counts, np.int32))
    return normals


def edge_endpoints(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int32 (a, b) of the three directed edges of each face, (i1,i2), (i1,i3), (i3,i2)."""
    edge_a = np.empty(3 * faces.shape[0], dtype=np.int32)
    edge_b = np.empty(3 * faces.shape[0], dtype=np.int32)
    _LIBRARY.edge_endpoints(_address(faces, np.int32), faces.shape[0], _address(edge_a, np.int32),
                            _address(edge_b, np.int32))
    return edge_a, edge_b


def edge_weights(points: np.ndarray, normals: np.ndarray, colours01: np.ndarray | None, edge_a: np.ndarray,
                 edge_b: np.ndarray, colour_limit: float) -> np.ndarray:
    """float32 weight of each edge; ``colours01`` (N, 3) float32 in [0, 1] for the colour-aware variant."""
    weights = np.empty(edge_a.shape[0], dtype=np.float32)
    colours = None if colours01 is None else _address(colours01, np.float32)
    _LIBRARY.edge_weights(_address(points, np.float32), _address(normals, np.float32), colours,
                          int(colours01 is not None), _address(edge_a, np.int32), _address(edge_b, np.int32),
                          edge_a.shape[0], colour_limit, _address(weights, np.float32))
    return weights


def std_sort_order(weights: np.ndarray, depth_limit: int) -> np.ndarray:
    """Permutation (int32) that libstdc++'s std::sort applies to records compared by weight only."""
    keys = np.array(weights, dtype=np.float32, copy=True)
    order = np.arange(keys.shape[0], dtype=np.int32)
    if _LIBRARY.introsort(_address(keys, np.float32), _address(order, np.int32), keys.shape[0], depth_limit):
        raise MemoryError("introsort: out of memory")
    return order


def felzenszwalb(num_vertices: int, edge_a: np.ndarray, edge_b: np.ndarray, weights: np.ndarray, order: np.ndarray,
                 k_thresh: np.float32, min_verts: int) -> np.ndarray:
    """(N,) int64 segment ids (root vertex) of the edges taken in ``order``, small segments then merged."""
    seg_ids = np.empty(num_vertices, dtype=np.int64)
    status = _LIBRARY.felzenszwalb(num_vertices, _address(edge_a, np.int32), _address(edge_b, np.int32),
                                   _address(weights, np.float32), _address(order, np.int32), order.shape[0],
                                   float(k_thresh), min_verts, _address(seg_ids, np.int64))
    if status:
        raise MemoryError("felzenszwalb: out of memory")
    return seg_ids
