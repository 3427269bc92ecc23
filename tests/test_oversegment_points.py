"""Point-cloud oversegmentation and normals: hand-checkable clouds, the mesh path through the one entry point,
and real scans (ScanNet vertices without faces, mOSD Kinect frames) when ../shared is present."""

from __future__ import annotations

import numpy as np
import pytest

from unscene3d.errors import InputError
from unscene3d.normals import (
    estimate_normals,
    neighbour_graph,
    neighbourhood_covariances,
    scene_graph,
    scene_normals,
    voxel_downsample,
)
from unscene3d.oversegment import oversegment, partition_agreement
from unscene3d.oversegment_points import oversegment_points, oversegment_scene, stable_order
from unscene3d.scene import Scene

NO_FACES = np.zeros((0, 3), np.int64)


def plane_grid(n: int, spacing: float = 0.01) -> np.ndarray:
    """n x n points of the z=0 plane."""
    xs, ys = np.meshgrid(np.arange(n) * spacing, np.arange(n) * spacing, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], axis=1)


def floor_and_wall(n: int = 20, spacing: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """A floor (z=0, x < edge) meeting a wall (x = edge, going up) at a concave 90 degree corner."""
    floor = plane_grid(n, spacing)
    wall = plane_grid(n, spacing)[:, [2, 1, 0]] + [(n - 1) * spacing, 0, spacing]
    return np.vstack([floor, wall]), np.repeat([0, 1], [len(floor), len(wall)])


def test_voxel_downsample_numbers_voxels_by_first_point_and_averages():
    points = np.array([[0.5, 0.5, 0.5], [0.1, 0.1, 0.1], [0.2, 0.3, 0.4], [1.5, 0.2, 0.2]])
    voxel_of_point, means = voxel_downsample(points, 1.0)
    assert voxel_of_point.tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(means, [[0.8 / 3, 0.9 / 3, 1.0 / 3], [1.5, 0.2, 0.2]])


def test_plane_normals_face_up_or_the_sensor():
    points = plane_grid(10) + np.random.default_rng(0).normal(scale=1e-4, size=(100, 3))
    np.testing.assert_allclose(estimate_normals(points), np.tile([0, 0, 1], (100, 1)), atol=1e-2)
    below = estimate_normals(points, sensor=np.array([0.05, 0.05, -1.0]))
    np.testing.assert_allclose(below, np.tile([0, 0, -1], (100, 1)), atol=1e-2)


def box_faces(sides: list[tuple[int, float]]) -> np.ndarray:
    """Faces of the cube [-0.1, 0.1]^3 sampled every cm: (axis, coordinate) per face."""
    grid = plane_grid(21, 0.01) - [0.1, 0.1, 0.0]
    faces = []
    for axis, value in sides:
        face = np.roll(grid, axis + 1, axis=1)
        face[:, axis] = value
        faces.append(face)
    return np.unique(np.round(np.vstack(faces), 6), axis=0)


def test_normals_of_an_object_point_out_and_of_a_room_in():
    # An object seen from around and above (no bottom): its top faces up, so every side faces out.
    box = box_faces([(0, -0.1), (0, 0.1), (1, -0.1), (1, 0.1), (2, 0.1)])
    outward = np.einsum("ij,ij->i", estimate_normals(box, voxel_size=0.01), box) > 0
    assert outward.mean() > 0.97
    # A room seen from inside (no ceiling): its floor faces up, so every wall faces in.
    room = box_faces([(0, -0.1), (0, 0.1), (1, -0.1), (1, 0.1), (2, -0.1)])
    inward = np.einsum("ij,ij->i", estimate_normals(room, voxel_size=0.01), room) < 0
    assert inward.mean() > 0.97


def test_two_planes_at_a_concave_corner_are_two_segments():
    points, side = floor_and_wall()
    # Without a minimum size the crease (normals at 45 degrees) is a thin strip of its own.
    assert oversegment_points(points, voxel_size=0.01, k_thresh=0.05, min_verts=20).num_segments == 3
    segmentation = oversegment_points(points, voxel_size=0.01, k_thresh=0.05, min_verts=50)
    assert segmentation.num_segments == 2
    assert partition_agreement(segmentation.labels, side)[0] > 0.95
    assert segmentation.adjacency.tolist() == [[0, 1]]
    assert segmentation.params["graph"] == "points" and segmentation.params["voxelSize"] == 0.01


def test_separate_objects_are_never_joined_and_labels_reach_every_input_point():
    plane = plane_grid(12)
    far = plane + [1.0, 0.0, 0.0]
    # Each point twice: both copies share a voxel, so they share a segment.
    points = np.vstack([plane, far, plane])
    segmentation = oversegment_points(points, voxel_size=0.01, min_verts=1000)
    labels = segmentation.labels
    assert len(labels) == len(points) and segmentation.num_segments == 2
    assert (labels[:144] == 0).all() and (labels[144:288] == 1).all() and (labels[288:] == 0).all()
    # ScanNet-style ids: the index of the segment's first input point.
    assert set(segmentation.seg_ids.tolist()) == {0, 144}
    assert segmentation.adjacency.shape == (0, 2)


def test_colour_variant_cuts_only_where_normals_and_colours_change():
    points, side = floor_and_wall()
    grey = np.full((len(points), 3), 128, dtype=np.uint8)
    # (1 - n_a.n_b) * colour difference: one colour, no cut even at the crease.
    assert oversegment_points(points, grey, variant="unscene3d", voxel_size=0.01, min_verts=50).num_segments == 1
    two = np.where(side[:, None] == 1, [30, 30, 200], [200, 30, 30]).astype(np.uint8)
    first = oversegment_points(points, two, variant="unscene3d", voxel_size=0.01, min_verts=50)
    again = oversegment_points(points, two, variant="unscene3d", voxel_size=0.01, min_verts=50)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert first.num_segments == 2 and partition_agreement(first.labels, side)[0] > 0.95
    # A flat plane is never cut, whatever its colours.
    plane = plane_grid(20)
    halves = np.where(plane[:, :1] < 0.095, [200, 30, 30], [30, 30, 200]).astype(np.uint8)
    assert oversegment_points(plane, halves, variant="unscene3d", voxel_size=0.01).num_segments == 1
    with pytest.raises(InputError, match="give per-vertex colors"):
        oversegment_points(points, None, variant="unscene3d")


@pytest.mark.parametrize(
    "points, problem",
    [
        (np.zeros((1, 3)), "at least 2 points"),
        (np.ones((6, 3)), "all 6 points are at the same position"),
        (np.array([[0.0, 0, 0], [np.nan, 0, 0]]), "point 1 has a NaN"),
        (np.zeros((4, 2)), "(N, 3)"),
    ],
)
def test_bad_clouds(points, problem):
    with pytest.raises(InputError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        oversegment_points(points)


def test_georeferenced_coordinates_segment_like_local_ones():
    points, _ = floor_and_wall()
    local = oversegment_points(points, voxel_size=0.01, min_verts=50)
    far = oversegment_points(points + [512_345.0, 4_123_456.0, 300.0], voxel_size=0.01, min_verts=50)
    np.testing.assert_array_equal(far.labels, local.labels)


def test_a_cloud_inside_one_voxel_is_one_segment():
    segmentation = oversegment_points(np.array([[0.0, 0, 0], [0.001, 0, 0], [0, 0.002, 0]]))
    assert segmentation.labels.tolist() == [0, 0, 0] and segmentation.adjacency.shape == (0, 2)


def test_entry_point_names_the_scan_in_errors():
    scene = Scene(name="tiny", vertices=plane_grid(3), faces=NO_FACES)
    with pytest.raises(InputError, match="^tiny: k_thresh must be"):
        oversegment_scene(scene, k_thresh=-1.0)


def test_entry_point_keeps_the_mesh_path_exact():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 2, 3], [3, 2, 5], [3, 5, 4]])
    scene = Scene(name="fold", vertices=vertices, faces=faces)
    direct = oversegment(vertices, faces, k_thresh=0.01, min_verts=2)
    through = oversegment_scene(scene, k_thresh=0.01, min_verts=2, voxel_size=5.0)
    np.testing.assert_array_equal(through.seg_ids, direct.seg_ids)
    assert through.params == direct.params


def test_scene_normals_of_a_point_cloud_are_estimated():
    scene = Scene(name="plane", vertices=plane_grid(8), faces=NO_FACES)
    np.testing.assert_allclose(scene_normals(scene), np.tile([0, 0, 1], (64, 1)), atol=1e-6)
    given = Scene(name="plane", vertices=plane_grid(8), faces=NO_FACES, normals=np.tile([1.0, 0, 0], (64, 1)))
    assert scene_normals(given)[0].tolist() == [1, 0, 0]


def test_sparse_clouds_get_longer_edges():
    # 5 cm spacing, beyond 3 voxels of 1 cm: the gap rule keeps the cloud connected.
    graph = neighbour_graph(plane_grid(10, 0.05), voxel_size=0.01)
    assert graph.max_edge == pytest.approx(0.15)
    assert (graph.neighbours < graph.num_nodes).all(axis=1).any()


def test_graph_edges_are_every_neighbour_pair_once_without_self():
    rng = np.random.default_rng(4)
    points = np.vstack([rng.random((300, 3)), np.full((3, 3), 0.5)])  # three points in one voxel, for the merges
    graph = neighbour_graph(points, voxel_size=0.01, neighbours=5)
    rows = np.arange(graph.num_nodes)
    assert not (graph.neighbours == rows[:, None]).any()
    linked = graph.neighbours < graph.num_nodes
    pairs = {(min(i, j), max(i, j)) for i, row in zip(rows, graph.neighbours) for j in row[row < graph.num_nodes]}
    assert linked.sum() >= len(pairs)
    assert list(zip(graph.edge_a.tolist(), graph.edge_b.tolist())) == sorted(pairs)


def test_neighbourhood_covariances_are_the_vectorised_forms_bits():
    rng = np.random.default_rng(5)
    graph = neighbour_graph(np.vstack([rng.random((400, 3)), [[9.0, 9.0, 9.0]]]), voxel_size=0.01, neighbours=6)
    count = graph.num_nodes
    assert (graph.neighbours == count).any()  # the lone point has no neighbour: zeroed members count too
    members = np.concatenate([np.arange(count)[:, None], graph.neighbours], axis=1)
    valid = (members < count).astype(np.float64)
    cloud = np.vstack([graph.points, np.zeros((1, 3))])[members]
    weight = valid.sum(axis=1)
    mean = (cloud * valid[:, :, None]).sum(axis=1) / weight[:, None]
    centred = (cloud - mean[:, None, :]) * valid[:, :, None]
    expected = np.einsum("nki,nkj->nij", centred, centred) / weight[:, None, None]
    covariance, size = neighbourhood_covariances(graph.points, graph.neighbours)
    assert np.array_equal(size, weight) and np.array_equal(covariance, expected)


def test_stable_order_is_numpys_stable_argsort():
    rng = np.random.default_rng(0)
    weights = rng.choice(np.float32([-2.5, -0.0, 0.0, 1e-30, 0.25, 0.5, 3.0, np.inf]), 5000)
    weights[::3] = rng.random(1667).astype(np.float32)
    expected = np.argsort(weights, kind="stable")
    assert stable_order(weights).dtype == np.int32
    np.testing.assert_array_equal(stable_order(weights), expected)
    weights[7] = np.nan
    np.testing.assert_array_equal(stable_order(weights), np.argsort(weights, kind="stable"))


def test_a_clouds_graph_is_built_once_until_its_points_change():
    scene = Scene(name="plane", vertices=plane_grid(8), faces=NO_FACES)
    graph = scene_graph(scene)
    assert scene_graph(scene) is graph and not graph.normals.flags.writeable
    assert scene_graph(scene, voxel_size=0.005) is not graph
    np.testing.assert_array_equal(scene_normals(scene), graph.point_normals())
    scene.vertices = scene.vertices + 1.0
    assert scene_graph(scene) is not graph


# --- real scans ---------------------------------------------------------------------------------------


def test_scannet_vertices_as_a_point_cloud_resemble_the_mesh_segments(scene0000_dir):
    from unscene3d.baselines.common import partition_to_instances
    from unscene3d.evaluation import evaluate_scenes
    from unscene3d.io.scan import load_scan

    scene = load_scan(scene0000_dir, load_frames=False, load_gt=True)
    mesh = oversegment_scene(scene, k_thresh=0.05, min_verts=500)
    cloud = Scene(name=scene.name, vertices=scene.vertices, faces=NO_FACES, colors=scene.colors, gt=scene.gt)
    points = oversegment_scene(cloud, k_thresh=0.05, min_verts=500)
    # Measured: 73.7 % of the vertices in matched segments, 33 segments each (docs/benchmarks.md).
    assert partition_agreement(mesh.labels, points.labels)[0] > 0.70
    ap50 = evaluate_scenes([(scene.name, partition_to_instances(points.labels), scene.gt)]).overall["AP50"]
    assert ap50 >= 0.8 * 25.8  # the goal: 80 % of the mesh path's 25.8 (percent)


@pytest.mark.parametrize("frame", ["learn0", "learn17", "learn25", "learn33"])
def test_mosd_frames_objects_are_found(shared_data, frame):
    from unscene3d.baselines import felzenszwalb_instances
    from unscene3d.evaluation import evaluate_scenes
    from unscene3d.io.scan import load_scan

    path = shared_data / "mosd" / f"{frame}.pcd"
    if not path.is_file():
        pytest.skip(f"mOSD frame not found at {path}")
    scene = load_scan(path)
    # The documented tabletop setting: 1 cm voxels, 100-voxel (0.01 m^2) minimum segments, default k.
    found = felzenszwalb_instances(scene, voxel_size=0.01, min_verts=100)
    ap50 = evaluate_scenes([(frame, found, scene.gt)]).overall["AP50"]
    assert ap50 >= 50  # percent
