"""The no-weights pseudo-mask math on cases solvable by hand: geometry, structure, segment graph, cuts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from unscene3d.features.geometric import geometric_descriptors
from unscene3d.pseudo import cuts
from unscene3d.pseudo.cuts import Candidate, CutConfig, best_bisection, cut_tree, objectness, select_masks
from unscene3d.pseudo.graph import segment_affinity
from unscene3d.scene import Scene
from unscene3d.segments import (
    CEILING,
    FLOOR,
    OBJECT,
    WALL,
    convex_borders,
    detect_structure,
    segment_contacts,
    segment_geometry,
    surface_edges,
)
from unscene3d.segments.geometry import vertex_areas


def rectangle(origin, u, v, step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A grid-triangulated rectangle ``origin + s u + t v`` (s, t in [0, 1]), normals along u x v."""
    origin, u, v = (np.asarray(x, dtype=np.float64) for x in (origin, u, v))
    nu = max(1, int(round(np.linalg.norm(u) / step)))
    nv = max(1, int(round(np.linalg.norm(v) / step)))
    s, t = np.meshgrid(np.linspace(0, 1, nu + 1), np.linspace(0, 1, nv + 1), indexing="ij")
    vertices = origin + s.reshape(-1, 1) * u + t.reshape(-1, 1) * v
    index = np.arange((nu + 1) * (nv + 1)).reshape(nu + 1, nv + 1)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return vertices, faces


def assemble(parts, colors=None) -> tuple[Scene, np.ndarray]:
    """One scene from (vertices, faces) parts; each part is one segment (its label is its index)."""
    vertices, faces, labels, offset = [], [], [], 0
    for k, (v, f) in enumerate(parts):
        vertices.append(v)
        faces.append(f + offset)
        labels.append(np.full(len(v), k))
        offset += len(v)
    vertices = np.concatenate(vertices)
    labels = np.concatenate(labels)
    rgb = None if colors is None else np.asarray(colors, dtype=np.uint8)[labels]
    return Scene("hand", vertices, np.concatenate(faces), colors=rgb), labels


# --------------------------------------------------------------------------------------------- geometry


def test_vertex_areas_split_each_triangle_in_thirds() -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    np.testing.assert_allclose(vertex_areas(vertices, faces), [1 / 3, 1 / 6, 1 / 3, 1 / 6])


def test_point_cloud_areas_approximate_the_surface() -> None:
    # a random (Poisson-like) sample of a 2 m x 1 m sheet: the 8-neighbour disc estimate is unbiased there
    points = np.random.default_rng(0).uniform([0, 0, 0], [2, 1, 0], size=(20000, 3))
    assert vertex_areas(points, np.zeros((0, 3), int)).sum() == pytest.approx(2.0, rel=0.1)


def test_segment_geometry_of_a_floor_and_a_wall() -> None:
    floor = rectangle([0, 0, 0], [2, 0, 0], [0, 1, 0])  # 2 m^2, normal +z
    wall = rectangle([0, 0, 0], [0, 1, 0], [0, 0, 1.5])  # 1.5 m^2, normal +x
    scene, labels = assemble([floor, wall], colors=[[200, 0, 0], [0, 0, 200]])
    geometry = segment_geometry(scene, labels, 2)
    np.testing.assert_allclose(geometry.area, [2.0, 1.5])
    np.testing.assert_allclose(geometry.centroid, [[1.0, 0.5, 0.0], [0.0, 0.5, 0.75]], atol=1e-9)
    np.testing.assert_allclose(geometry.unit_normal, [[0, 0, 1], [1, 0, 0]], atol=1e-9)
    np.testing.assert_allclose(geometry.thickness, 0.0, atol=1e-9)  # both are flat
    # a uniform 2 m x 1 m sheet has variances 2^2/12 and 1^2/12 along its axes
    np.testing.assert_allclose(geometry.eigenvalues[0], [4 / 12, 1 / 12, 0], atol=2e-3)
    assert geometry.floor == pytest.approx(0.0, abs=0.02)
    np.testing.assert_allclose(geometry.lab_std, 0.0, atol=1e-4)  # one colour per segment
    descriptors = geometric_descriptors(geometry)
    assert descriptors.shape == (2, 21) and np.isfinite(descriptors).all()


# -------------------------------------------------------------------------------------------- structure


def box_room(wardrobe: bool = True):
    """A 4 m x 3 m room, 2.5 m high, with ceiling, a table in the middle and a wardrobe on one wall."""
    parts = {
        "floor": rectangle([0, 0, 0], [4, 0, 0], [0, 3, 0]),
        "ceiling": rectangle([0, 0, 2.5], [0, 3, 0], [4, 0, 0]),  # faces down
        "wall_x0": rectangle([0, 0, 0], [0, 3, 0], [0, 0, 2.5]),  # faces +x (into the room)
        "wall_x4": rectangle([4, 0, 0], [0, 0, 2.5], [0, 3, 0]),  # faces -x
        "wall_y0": rectangle([0, 0, 0], [0, 0, 2.5], [4, 0, 0]),  # faces +y
        "wall_y3": rectangle([0, 3, 0], [4, 0, 0], [0, 0, 2.5]),  # faces -y
        "table_top": rectangle([1.5, 1.0, 0.75], [1.0, 0, 0], [0, 0.8, 0]),
    }
    if wardrobe:  # 1.6 m wide, 2 m tall, 0.6 m deep, against wall_y3: its front stands 0.6 m before the wall
        parts["wardrobe_front"] = rectangle([0.5, 2.4, 0], [1.6, 0, 0], [0, 0, 2.0])
        parts["wardrobe_top"] = rectangle([0.5, 2.4, 2.0], [1.6, 0, 0], [0, 0.6, 0])
    names = list(parts)
    scene, labels = assemble([parts[n] for n in names], colors=[[180, 180, 170]] * len(names))
    return scene, labels, names


def test_structure_finds_floor_walls_and_ceiling_but_not_furniture() -> None:
    scene, labels, names = box_room()
    geometry = segment_geometry(scene, labels, len(names))
    kinds = dict(zip(names, detect_structure(scene.vertices, geometry).kinds))
    assert kinds["floor"] == FLOOR and kinds["ceiling"] == CEILING
    assert all(kinds[w] == WALL for w in ("wall_x0", "wall_x4", "wall_y0", "wall_y3"))
    # the wardrobe front is as tall and wide as a wall, but the wall stands behind it
    assert kinds["table_top"] == OBJECT and kinds["wardrobe_front"] == OBJECT and kinds["wardrobe_top"] == OBJECT


def test_a_picture_in_a_walls_plane_stays_an_object_when_it_looks_different() -> None:
    scene, labels, names = box_room(wardrobe=False)
    picture_vertices, picture_faces = rectangle([3.999, 1.0, 1.2], [0, 0, 0.6], [0, 0.8, 0], step=0.05)
    scene2, labels2 = assemble(
        [(scene.vertices, scene.faces), (picture_vertices, picture_faces)], colors=[[180, 180, 170], [20, 30, 160]]
    )
    labels2 = np.concatenate([labels, np.full(len(picture_vertices), len(names))])
    geometry = segment_geometry(scene2, labels2, len(names) + 1)
    kinds = detect_structure(scene2.vertices, geometry).kinds
    assert kinds[names.index("wall_x4")] == WALL and kinds[-1] == OBJECT


# ------------------------------------------------------------------------------------------------ graph


def test_contacts_count_the_surface_edges_crossing_each_border() -> None:
    # a 2 x 1 strip of unit squares, one segment each: they share the edge (1, 2) only
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0], [2, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 2]])
    labels = np.array([0, 1, 1, 0, 1, 1])
    # crossing edges: (0,1) and (2,0) of the first face, (3,2)... -> count them by hand:
    # face [0,1,2]: edges 0-1 (0|1), 1-2 (1|1), 2-0 (1|0) -> 2 crossings
    # face [0,2,3]: edges 0-2 (0|1), 2-3 (1|0), 3-0 (0|0) -> 2 crossings; faces 3 and 4 lie in segment 1
    contacts = segment_contacts(labels, *surface_edges(vertices, faces), 2)
    np.testing.assert_array_equal(contacts.toarray(), [[0, 4], [4, 0]])


def test_convexity_tells_a_box_edge_from_a_crease_on_the_floor() -> None:
    # the top and a side of a box meet at a convex edge; the side and the floor at a concave crease
    top = rectangle([0, 0, 1], [1, 0, 0], [0, 1, 0])  # normal +z
    side = rectangle([1, 0, 0], [0, 1, 0], [0, 0, 1])  # normal +x
    floor = rectangle([1, 0, 0], [1, 0, 0], [0, 1, 0])  # normal +z, to the side's outside
    scene, labels = assemble([top, side, floor])
    geometry = segment_geometry(scene, labels, 3)
    convex = convex_borders(geometry, np.array([0, 1]), np.array([1, 2]))
    np.testing.assert_array_equal(convex, [True, False])


def test_affinity_is_contact_times_similarity_times_crease() -> None:
    top = rectangle([0, 0, 1], [1, 0, 0], [0, 1, 0])
    side = rectangle([1, 0, 0], [0, 1, 0], [0, 0, 1])
    floor = rectangle([1, 0, 0], [1, 0, 0], [0, 1, 0])
    scene, labels = assemble([top, side, floor])
    geometry = segment_geometry(scene, labels, 3)
    contacts = scipy.sparse.csr_matrix(np.array([[0, 10, 0], [10, 0, 6], [0, 6, 0]], dtype=float))
    same = np.zeros((3, 2))  # identical features: the similarity term is 1
    from unscene3d.pseudo.graph import GraphConfig

    weights = segment_affinity(geometry, contacts, same, GraphConfig(concave_angle=0.35)).toarray()
    assert weights[0, 1] == pytest.approx(10.0)  # convex: full contact
    # concave at 90 degrees: exp(-(pi/2)^2 / (2 * 0.35^2))
    assert weights[1, 2] == pytest.approx(6.0 * np.exp(-0.5 * (np.pi / 2 / 0.35) ** 2), rel=1e-6)
    np.testing.assert_allclose(weights, weights.T)


# ------------------------------------------------------------------------------------------------- cuts


def two_triangles(bridge: float) -> scipy.sparse.csr_matrix:
    """Two 3-cliques (weights 1) joined by one edge of weight ``bridge`` between nodes 2 and 3."""
    w = np.zeros((6, 6))
    for block in ([0, 1, 2], [3, 4, 5]):
        w[np.ix_(block, block)] = 1.0
    np.fill_diagonal(w, 0.0)
    w[2, 3] = w[3, 2] = bridge
    return scipy.sparse.csr_matrix(w)


def test_best_bisection_cuts_the_weak_bridge_with_the_ncut_value_by_hand() -> None:
    eps = 0.1
    value, side = best_bisection(two_triangles(eps))
    assert sorted([tuple(np.flatnonzero(side)), tuple(np.flatnonzero(~side))]) == [(0, 1, 2), (3, 4, 5)]
    assert value == pytest.approx(2 * eps / (6 + eps))  # cut / vol(A) + cut / vol(B), vol = 6 + eps


def test_cut_tree_keeps_cohesive_parts_whole() -> None:
    eps = 0.1
    tree = cut_tree(two_triangles(eps), np.ones(6, dtype=bool), CutConfig(max_ncut=1.0))
    nodes = {tuple(sorted(c.segments)): c for c in tree}
    assert set(nodes) == {(0, 1, 2, 3, 4, 5), (0, 1, 2), (3, 4, 5)}
    assert nodes[(0, 1, 2, 3, 4, 5)].separation == 0.0
    assert nodes[(0, 1, 2)].separation == pytest.approx(2 * eps / (6 + eps))
    # a triangle's best cut, one node off: cut 2, volumes 2 and 4 -> 2/2 + 2/4 = 1.5 > max_ncut, not cut
    assert nodes[(0, 1, 2)].cohesion == pytest.approx(1.5)
    inactive = cut_tree(two_triangles(eps), np.array([True, True, True, False, False, False]), CutConfig())
    assert {tuple(sorted(c.segments)) for c in inactive} == {(0, 1, 2)}


def test_fiedler_vector_of_large_graphs_matches_the_dense_solution(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    blocks = np.repeat(np.arange(3), 40)
    w = rng.uniform(0.5, 1.0, (120, 120)) * (rng.uniform(size=(120, 120)) < 0.2)
    w = np.triu(w, 1)
    w = w + w.T
    w *= np.where(blocks[:, None] == blocks[None, :], 1.0, 0.01)
    w[np.arange(119), np.arange(1, 120)] += 0.5  # a chain keeps the graph connected
    w[np.arange(1, 120), np.arange(119)] += 0.5
    dense = cuts.fiedler_vector(scipy.sparse.csr_matrix(w))
    monkeypatch.setattr(cuts, "_DENSE_SIZE", 10)
    sparse = cuts.fiedler_vector(scipy.sparse.csr_matrix(w))
    assert abs(np.corrcoef(dense, sparse)[0, 1]) == pytest.approx(1.0, abs=1e-8)


def test_objectness_formula_and_greedy_selection() -> None:
    # two unit squares side by side (segments 0, 1) and a 3 m long strip (segment 2)
    parts = [rectangle([0, 0, 0], [1, 0, 0], [0, 1, 0]), rectangle([1, 0, 0], [1, 0, 0], [0, 1, 0]),
             rectangle([0, 3, 0], [6, 0, 0], [0, 0.2, 0])]
    scene, labels = assemble(parts)
    geometry = segment_geometry(scene, labels, 3)
    candidates = [Candidate(np.array([0]), 0.2, 0.5), Candidate(np.array([0, 1]), 0.0, 3.0),
                  Candidate(np.array([2]), 0.0, 1.0)]
    scores = objectness(candidates, geometry, CutConfig())
    assert scores[0] == pytest.approx(0.8**2 * np.sqrt(0.55) * np.log(2.0))
    assert scores[1] == pytest.approx(np.sqrt(1.05) * np.log(3.0))  # cohesion is capped at 1
    # the strip's main-axis deviation is 6 / sqrt(12) = 1.73 m: penalised beyond 1.2 m
    prior = np.exp(-0.5 * ((6 / np.sqrt(12) - 1.2) / 0.3) ** 2)
    assert scores[2] == pytest.approx(np.sqrt(1.05) * np.log(1 + 1.2) * prior, rel=5e-3)  # a grid, not a sheet

    sizes = np.bincount(labels, minlength=3)
    masks, kept = select_masks(candidates, scores, sizes, CutConfig(min_vertices=1))
    # the pair wins over the single square it contains; the strip does not overlap it
    np.testing.assert_array_equal(masks, [[True, True, False], [False, False, True]])
    np.testing.assert_allclose(kept, scores[[1, 2]])
    masks, _ = select_masks(candidates, scores, sizes, CutConfig(min_vertices=1, max_masks=1))
    assert len(masks) == 1
