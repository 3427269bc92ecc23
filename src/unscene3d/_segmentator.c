/* The mesh oversegmentation's kernels in C, loaded with ctypes (unscene3d/native.py).

   The same computations as the numba kernels of unscene3d/oversegment_kernels.py, statement for statement and
   in the same float32 arithmetic (compiled with -ffp-contract=off: no fused multiply-add), so both give the
   ScanNet Segmentator's segment ids bit for bit. They exist for start-up time: a process that finds this
   library never imports numba on the mesh path (benchmarks/oversegment_startup.py). */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define INTROSORT_THRESHOLD 16

/* Face normals blended into vertex normals by a running average, n = lerp(n, face_n, 1 / (count + 1)). */
void vertex_normals(const float *points, int64_t num_points, const int32_t *faces, int64_t num_faces,
                    float *normals, int32_t *counts) {
    const float one = 1.0f;
    for (int64_t i = 0; i < 3 * num_points; i++) normals[i] = 0.0f;
    for (int64_t i = 0; i < num_points; i++) counts[i] = 0;
    for (int64_t f = 0; f < num_faces; f++) {
        int32_t i1 = faces[3 * f], i2 = faces[3 * f + 1], i3 = faces[3 * f + 2];
        float ux = points[3 * i2] - points[3 * i1];
        float uy = points[3 * i2 + 1] - points[3 * i1 + 1];
        float uz = points[3 * i2 + 2] - points[3 * i1 + 2];
        float vx = points[3 * i3] - points[3 * i1];
        float vy = points[3 * i3 + 1] - points[3 * i1 + 1];
        float vz = points[3 * i3 + 2] - points[3 * i1 + 2];
        float cx = uy * vz - uz * vy;
        float cy = uz * vx - ux * vz;
        float cz = ux * vy - uy * vx;
        float length = sqrtf(cx * cx + cy * cy + cz * cz);
        if (!(length > 0.0f)) continue; /* zero-area face: no normal (the C++ tool would blend a NaN in) */
        cx /= length;
        cy /= length;
        cz /= length;
        int32_t corners[3] = {i1, i2, i3};
        for (int k = 0; k < 3; k++) {
            int32_t v = corners[k];
            float t = one / ((float)counts[v] + one);
            float s = one - t;
            normals[3 * v] = t * cx + s * normals[3 * v];
            normals[3 * v + 1] = t * cy + s * normals[3 * v + 1];
            normals[3 * v + 2] = t * cz + s * normals[3 * v + 2];
            counts[v] += 1;
        }
    }
}

/* Three directed edges per face, (i1,i2), (i1,i3), (i3,i2). */
void edge_endpoints(const int32_t *faces, int64_t num_faces, int32_t *a, int32_t *b) {
    for (int64_t f = 0; f < num_faces; f++) {
        a[3 * f] = faces[3 * f];
        b[3 * f] = faces[3 * f + 1];
        a[3 * f + 1] = faces[3 * f];
        b[3 * f + 1] = faces[3 * f + 2];
        a[3 * f + 2] = faces[3 * f + 2];
        b[3 * f + 2] = faces[3 * f + 1];
    }
}

/* w = 1 - n_a.n_b (times the L1 colour difference with colours), squared when the edge is convex (and, with
   colours, the colour difference is below colour_limit, compared in double as UnScene3D's C++ does). */
void edge_weights(const float *points, const float *normals, const float *colors, int32_t use_colors,
                  const int32_t *edge_a, const int32_t *edge_b, int64_t num_edges, double colour_limit,
                  float *weights) {
    const float one = 1.0f, zero = 0.0f;
    for (int64_t e = 0; e < num_edges; e++) {
        int32_t a = edge_a[e], b = edge_b[e];
        float dx = points[3 * b] - points[3 * a];
        float dy = points[3 * b + 1] - points[3 * a + 1];
        float dz = points[3 * b + 2] - points[3 * a + 2];
        float length = sqrtf(dx * dx + dy * dy + dz * dz);
        dx /= length;
        dy /= length;
        dz /= length;
        float dot = normals[3 * a] * normals[3 * b] + normals[3 * a + 1] * normals[3 * b + 1] +
                    normals[3 * a + 2] * normals[3 * b + 2];
        int convex = normals[3 * b] * dx + normals[3 * b + 1] * dy + normals[3 * b + 2] * dz > zero;
        float w = one - dot;
        if (use_colors) {
            float colour_dist = fabsf(colors[3 * a] - colors[3 * b]) + fabsf(colors[3 * a + 1] - colors[3 * b + 1]) +
                                fabsf(colors[3 * a + 2] - colors[3 * b + 2]);
            w = w * colour_dist;
            convex = convex && (double)colour_dist < colour_limit;
        }
        if (convex) w = w * w;
        weights[e] = w;
    }
}

/* ------------------------------------------------------------------------------------------------------
   libstdc++'s std::sort (introsort), so that equal weights end up in the C++ tool's order. */

static void swap(float *keys, int32_t *items, int64_t i, int64_t j) {
    float key = keys[i];
    int32_t item = items[i];
    keys[i] = keys[j];
    items[i] = items[j];
    keys[j] = key;
    items[j] = item;
}

static void sift_down(float *keys, int32_t *items, int64_t base, int64_t hole, int64_t length, float key,
                      int32_t item) {
    int64_t top = hole, child = hole;
    while (child < (length - 1) / 2) {
        child = 2 * (child + 1);
        if (keys[base + child] < keys[base + child - 1]) child--;
        keys[base + hole] = keys[base + child];
        items[base + hole] = items[base + child];
        hole = child;
    }
    if (length % 2 == 0 && child == (length - 2) / 2) {
        child = 2 * (child + 1);
        keys[base + hole] = keys[base + child - 1];
        items[base + hole] = items[base + child - 1];
        hole = child - 1;
    }
    int64_t parent = (hole - 1) / 2;
    while (hole > top && keys[base + parent] < key) {
        keys[base + hole] = keys[base + parent];
        items[base + hole] = items[base + parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    keys[base + hole] = key;
    items[base + hole] = item;
}

static void heap_sort(float *keys, int32_t *items, int64_t first, int64_t last) {
    int64_t length = last - first;
    if (length < 2) return;
    for (int64_t parent = (length - 2) / 2;; parent--) {
        sift_down(keys, items, first, parent, length, keys[first + parent], items[first + parent]);
        if (parent == 0) break;
    }
    while (last - first > 1) {
        last--;
        float key = keys[last];
        int32_t item = items[last];
        keys[last] = keys[first];
        items[last] = items[first];
        sift_down(keys, items, first, 0, last - first, key, item);
    }
}

static void median_to_first(float *keys, int32_t *items, int64_t result, int64_t a, int64_t b, int64_t c) {
    if (keys[a] < keys[b]) {
        if (keys[b] < keys[c]) swap(keys, items, result, b);
        else if (keys[a] < keys[c]) swap(keys, items, result, c);
        else swap(keys, items, result, a);
    } else if (keys[a] < keys[c]) swap(keys, items, result, a);
    else if (keys[b] < keys[c]) swap(keys, items, result, c);
    else swap(keys, items, result, b);
}

static int64_t partition(float *keys, int32_t *items, int64_t first, int64_t last) {
    int64_t mid = first + (last - first) / 2;
    median_to_first(keys, items, first, first + 1, mid, last - 1);
    float pivot = keys[first];
    int64_t lo = first + 1, hi = last;
    for (;;) {
        while (keys[lo] < pivot) lo++;
        hi--;
        while (pivot < keys[hi]) hi--;
        if (!(lo < hi)) return lo;
        swap(keys, items, lo, hi);
        lo++;
    }
}

static void insertion_sort(float *keys, int32_t *items, int64_t first, int64_t last, int guarded) {
    for (int64_t i = guarded ? first + 1 : first; i < last; i++) {
        float key = keys[i];
        int32_t item = items[i];
        if (guarded && key < keys[first]) {
            for (int64_t j = i; j > first; j--) {
                keys[j] = keys[j - 1];
                items[j] = items[j - 1];
            }
            keys[first] = key;
            items[first] = item;
        } else {
            int64_t j = i;
            while (key < keys[j - 1]) {
                keys[j] = keys[j - 1];
                items[j] = items[j - 1];
                j--;
            }
            keys[j] = key;
            items[j] = item;
        }
    }
}

/* Sorts keys ascending in place, carrying items, as std::sort permutes; 0, or -1 when out of memory. */
int introsort(float *keys, int32_t *items, int64_t n, int64_t depth_limit) {
    if (n < 2) return 0;
    int64_t *stack = malloc(3 * (size_t)(depth_limit + 1) * sizeof(int64_t)); /* (first, last, depth) */
    if (stack == NULL) return -1;
    stack[0] = 0;
    stack[1] = n;
    stack[2] = depth_limit;
    int64_t top = 1;
    while (top > 0) {
        top--;
        int64_t first = stack[3 * top], last = stack[3 * top + 1], depth = stack[3 * top + 2];
        while (last - first > INTROSORT_THRESHOLD) {
            if (depth == 0) {
                heap_sort(keys, items, first, last);
                break;
            }
            depth--;
            int64_t cut = partition(keys, items, first, last);
            stack[3 * top] = cut;
            stack[3 * top + 1] = last;
            stack[3 * top + 2] = depth;
            top++;
            last = cut;
        }
    }
    free(stack);
    if (n > INTROSORT_THRESHOLD) {
        insertion_sort(keys, items, 0, INTROSORT_THRESHOLD, 1);
        insertion_sort(keys, items, INTROSORT_THRESHOLD, n, 0);
    } else {
        insertion_sort(keys, items, 0, n, 1);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------------
   Felzenszwalb union-find ("universe": union by rank, path compression of the start node only). */

static int32_t find(int32_t *parent, int32_t x) {
    int32_t root = x;
    while (parent[root] != root) root = parent[root];
    parent[x] = root;
    return root;
}

static int32_t join(int32_t *parent, int32_t *rank, int32_t *size, int32_t x, int32_t y) {
    /* On equal rank the second root (y) wins, which fixes the ids the C++ tool writes. */
    if (rank[x] > rank[y]) {
        parent[y] = x;
        size[x] += size[y];
        return x;
    }
    parent[x] = y;
    size[y] += size[x];
    if (rank[x] == rank[y]) rank[y] += 1;
    return y;
}

/* Segment ids (each segment's root vertex) of the edges taken in `order`; 0, or -1 when out of memory. */
int felzenszwalb(int64_t num_vertices, const int32_t *edge_a, const int32_t *edge_b, const float *weights,
                 const int32_t *order, int64_t num_edges, float k_thresh, int64_t min_verts, int64_t *seg_ids) {
    int32_t *parent = malloc((size_t)num_vertices * sizeof(int32_t));
    int32_t *rank = malloc((size_t)num_vertices * sizeof(int32_t));
    int32_t *size = malloc((size_t)num_vertices * sizeof(int32_t));
    float *threshold = malloc((size_t)num_vertices * sizeof(float));
    if (parent == NULL || rank == NULL || size == NULL || threshold == NULL) {
        free(parent);
        free(rank);
        free(size);
        free(threshold);
        return -1;
    }
    for (int64_t v = 0; v < num_vertices; v++) {
        parent[v] = (int32_t)v;
        rank[v] = 0;
        size[v] = 1;
        threshold[v] = k_thresh;
    }
    for (int64_t i = 0; i < num_edges; i++) {
        int32_t e = order[i];
        int32_t a = find(parent, edge_a[e]);
        int32_t b = find(parent, edge_b[e]);
        float w = weights[e];
        if (a != b && w <= threshold[a] && w <= threshold[b]) {
            int32_t root = join(parent, rank, size, a, b);
            threshold[root] = w + k_thresh / (float)size[root];
        }
    }
    /* Second pass, same edge order: absorb segments below the minimum size into a neighbour. */
    for (int64_t i = 0; i < num_edges; i++) {
        int32_t e = order[i];
        int32_t a = find(parent, edge_a[e]);
        int32_t b = find(parent, edge_b[e]);
        if (a != b && (size[a] < min_verts || size[b] < min_verts)) join(parent, rank, size, a, b);
    }
    for (int64_t v = 0; v < num_vertices; v++) seg_ids[v] = find(parent, (int32_t)v);
    free(parent);
    free(rank);
    free(size);
    free(threshold);
    return 0;
}
