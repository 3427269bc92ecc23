"""The procedural synthetic room: determinism, ground truth, geometry, welding and rendered frames."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from unscene3d.synthetic import make_synthetic_scene, synthetic_layout
from unscene3d.synthetic.primitives import box, cylinder
from unscene3d.synthetic.render import look_at, rasterize

BENCHMARK_LABELS = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39}


@pytest.fixture(scope="module")
def scene():
    return make_synthetic_scene(0)


@pytest.fixture(scope="module")
def exact_scene():
    """Seed 2 without surface noise, with its layout, for exact contact checks."""
    return make_synthetic_scene(2, noise=0.0), synthetic_layout(2)


@pytest.fixture(scope="module")
def framed_scene():
    return make_synthetic_scene(1, with_frames=True)


def _edges(faces: np.ndarray) -> np.ndarray:
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def test_same_seed_gives_bit_identical_scenes(scene):
    again = make_synthetic_scene(0)
    for name in ("vertices", "faces", "colors", "gt"):
        assert getattr(scene, name).tobytes() == getattr(again, name).tobytes(), name
    assert scene.name == again.name == "synthetic_0000"


def test_noise_changes_neither_layout_nor_triangulation(scene):
    clean = make_synthetic_scene(0, noise=0.0)
    np.testing.assert_array_equal(clean.faces, scene.faces)
    np.testing.assert_array_equal(clean.gt, scene.gt)
    shift = np.linalg.norm(clean.vertices - scene.vertices, axis=1)
    assert 0 < np.median(shift) < 0.005 and shift.max() < 0.03


def test_different_seeds_give_different_rooms():
    layouts = [synthetic_layout(seed) for seed in range(4)]
    assert len({layout.size for layout in layouts}) == 4
    signatures = {tuple((o.kind, round(o.parts[0].center[0], 3)) for o in layout.objects) for layout in layouts}
    assert len(signatures) == 4
    yaws = {round(o.parts[0].yaw % (np.pi / 2), 3) for layout in layouts for o in layout.objects}
    assert len(yaws) > 5  # free-standing objects are turned by arbitrary angles, not only wall-aligned


def test_arrays_have_the_scene_contract_shapes_and_types(scene):
    n = scene.num_vertices
    assert 40_000 < n < 100_000
    assert scene.vertices.shape == (n, 3) and scene.vertices.dtype == np.float64
    assert scene.faces.ndim == 2 and scene.faces.shape[1] == 3 and scene.faces.dtype == np.int64
    assert scene.colors.shape == (n, 3) and scene.colors.dtype == np.uint8
    assert scene.gt.shape == (n,) and scene.gt.dtype == np.int64
    assert scene.frames == [] and scene.normals is None
    # z up, floor at 0 (up to the surface noise)
    floor = scene.gt // 1000 == 2
    assert abs(np.median(scene.vertices[floor, 2])) < 1e-3 and np.abs(scene.vertices[floor, 2]).max() < 0.02
    assert scene.vertices[:, 2].max() > 2.0


def test_mesh_faces_are_valid(scene):
    faces = scene.faces
    assert faces.min() == 0 and faces.max() == scene.num_vertices - 1
    assert len(np.unique(faces)) == scene.num_vertices  # every vertex is used
    assert np.all((faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2]))
    p = scene.vertices[faces]
    area = np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1) / 2
    assert np.mean(area < 1e-7) < 1e-4
    edge = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2)
    assert 0.025 < np.median(edge) < 0.06  # scan-like resolution (ScanNet's release meshes: ~5 cm)
    # irregular triangulation: vertex valences vary
    valence = np.bincount(faces.ravel(), minlength=scene.num_vertices)
    assert np.std(valence) > 0.5


def test_ground_truth_labels_and_instances(scene):
    labels, instances = scene.gt // 1000, scene.gt % 1000
    assert set(np.unique(labels)) - {1, 2} <= BENCHMARK_LABELS
    # one label per instance id, instance ids unique in the scene
    pairs = np.unique(scene.gt)
    assert len(np.unique(pairs % 1000)) == len(pairs)
    objects = pairs[pairs // 1000 > 2] % 1000
    assert len(objects) >= 10
    np.testing.assert_array_equal(np.sort(objects), np.arange(1, len(objects) + 1))
    assert np.sum(labels == 1) > 0 and len(np.unique(instances[labels == 1])) == 4  # walls
    assert np.sum(labels == 2) > 0 and len(np.unique(instances[labels == 2])) == 1  # floor
    counts = np.bincount(instances)
    assert counts[objects].min() > 100  # every object counts in the benchmark evaluation


def test_every_layout_object_is_in_the_mesh_with_its_label(exact_scene):
    scene, layout = exact_scene
    for obj in layout.objects:
        mask = scene.gt % 1000 == obj.instance
        assert mask.sum() > 100, obj.kind
        assert np.all(scene.gt[mask] // 1000 == obj.label), obj.kind
    assert {o.label for o in layout.objects} <= BENCHMARK_LABELS


def test_objects_rest_on_the_floor_or_on_their_support(exact_scene):
    scene, layout = exact_scene
    instances = scene.gt % 1000
    on_objects = 0
    for obj in layout.objects:
        points = scene.vertices[instances == obj.instance]
        bottom = points[:, 2].min()
        if obj.support == layout.floor_instance:
            assert abs(bottom) < 1e-9, obj.kind
        elif 0 < obj.support <= len(layout.objects):
            on_objects += 1
            lo, hi = points[:, :2].min(0) - 0.05, points[:, :2].max(0) + 0.05
            support = scene.vertices[instances == obj.support]
            near = support[np.all((support[:, :2] > lo) & (support[:, :2] < hi), axis=1)]
            below = near[near[:, 2] <= bottom + 1e-9]
            assert len(below) and abs(below[:, 2].max() - bottom) < 1e-9, obj.kind  # stands on the top
            centre = points[:, :2].mean(0)
            assert np.all(centre > support[:, :2].min(0)) and np.all(centre < support[:, :2].max(0))
    assert on_objects >= 3


def test_objects_are_welded_to_their_supports(exact_scene):
    """Objects share mesh edges with what they stand on or hang from (only curtains hang free)."""
    scene, layout = exact_scene
    instances = scene.gt % 1000
    edges = instances[_edges(scene.faces)]
    touching = {(int(a), int(b)) for a, b in np.unique(edges[edges[:, 0] != edges[:, 1]], axis=0)}
    for obj in layout.objects:
        if obj.support:
            assert (obj.instance, obj.support) in touching or (obj.support, obj.instance) in touching, obj.kind
        else:
            assert obj.kind == "curtain"


def test_primitives_are_closed_and_outward_facing():
    rng = np.random.default_rng(0)
    for mesh, volume in ((box((0.5, 0.3, 0.2), 0.035, rng), 0.5 * 0.3 * 0.2),
                         (cylinder(0.1, 0.4, 0.035, rng), np.pi * 0.1**2 * 0.4)):
        edges = np.sort(_edges(mesh.faces), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert np.all(counts == 2)  # watertight
        p = mesh.vertices[mesh.faces]
        signed = np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6
        assert signed == pytest.approx(volume, rel=0.04)  # positive: normals point outwards
    opened = box((0.5, 0.3, 0.2), 0.035, rng, open_faces=("-z",))
    assert np.allclose(opened.vertices[opened.openings["-z"], 2], -0.1)
    assert len(opened.openings["-z"]) == 2 * (15 + 9)  # the rim: 2 x (ceil(0.5/h) + ceil(0.3/h))


def test_rasterizer_on_a_hand_solvable_square():
    # A 2 m square at z = 2 in front of a camera at the origin looking along +y (world).
    vertices = np.array([[-1.0, 2.0, -1.0], [1.0, 2.0, -1.0], [1.0, 2.0, 1.0], [-1.0, 2.0, 1.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    colors = np.array([[0, 0, 0], [200, 0, 0], [200, 200, 0], [0, 200, 0]], dtype=np.uint8)
    pose = look_at(np.zeros(3), np.array([0.0, 1.0, 0.0]))
    intrinsic = np.array([[50.0, 0, 49.5], [0, 50.0, 39.5], [0, 0, 1]])
    color, depth = rasterize(vertices, faces, colors, pose, intrinsic, (100, 80))
    # the square covers u, v within 49.5 +- 25 and 39.5 +- 25 (f * 1 m / 2 m)
    assert np.all(depth[20:60, 30:70] == np.float32(2.0)) and depth[5, 5] == 0 and depth[75, 95] == 0
    assert np.all(color[5, 5] == 0)
    # world x grows to the right of the image, world z (up) towards the top: red grows with x
    # (column) and green with z (upwards, i.e. decreasing row)
    assert color[40, 65, 0] > color[40, 35, 0] and color[25, 50, 1] > color[55, 50, 1]
    assert abs(int(color[40, 50, 0]) - 100) <= 3 and abs(int(color[40, 50, 1]) - 100) <= 3


def test_frames_have_opencv_poses_and_consistent_depth_and_colour(framed_scene):
    scene = framed_scene
    assert len(scene.frames) == 8
    tree = cKDTree(scene.vertices)
    for frame in scene.frames:
        assert frame.color.shape == (240, 320, 3) and frame.color.dtype == np.uint8
        assert frame.depth.shape == (240, 320) and frame.depth.dtype == np.float32
        rotation = frame.pose[:3, :3]
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        assert rotation[2, 1] < 0  # image y (down) points down in the world
        valid = frame.depth > 0
        assert valid.mean() > 0.9
        v, u = np.nonzero(valid)
        z = frame.depth[valid].astype(np.float64)
        k = frame.intrinsic
        cam = np.stack([(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z], 1)
        world = cam @ rotation.T + frame.pose[:3, 3]
        dist, nearest = tree.query(world, k=3)
        assert np.median(dist[:, 0]) < 0.02 and np.percentile(dist[:, 0], 99) < 0.04
        # the pixel colour is an interpolation of the vertex colours there
        local = scene.colors[nearest].astype(np.float64)
        pixel = frame.color[valid].astype(np.float64)
        inside = (pixel >= local.min(1) - 12) & (pixel <= local.max(1) + 12)
        assert inside.all(axis=1).mean() > 0.95
        assert np.median(np.abs(pixel - local.mean(1))) < 10


def test_frames_look_into_the_room_at_several_objects(framed_scene):
    scene = framed_scene
    lo, hi = scene.vertices.min(0), scene.vertices.max(0)
    tree = cKDTree(scene.vertices)
    seen = set()
    for frame in scene.frames:
        eye = frame.pose[:3, 3]
        assert np.all(eye[:2] > lo[:2]) and np.all(eye[:2] < hi[:2]) and 1.0 < eye[2] < 2.0
        v, u = np.nonzero(frame.depth > 0)
        z = frame.depth[v, u].astype(np.float64)
        k = frame.intrinsic
        cam = np.stack([(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z], 1)
        _, nearest = tree.query(cam @ frame.pose[:3, :3].T + frame.pose[:3, 3])
        gt = scene.gt[nearest]
        seen |= set(np.unique(gt[gt // 1000 > 2]).tolist())
    assert len(seen) >= 5


def test_sofas_have_loose_cushions_that_leave_the_rest_of_the_room_as_it_was():
    """A sofa: base, backrest, two armrests and 2-3 seat cushions each with its back cushion, every part inside
    the footprint; its cushions draw on a generator of their own, so the room's generator is left exactly where
    the five size draws leave it (every later object is the one it was before the cushions)."""
    from unscene3d.synthetic.furniture import sofa

    for seed in range(20):
        rng, reference = np.random.default_rng(seed), np.random.default_rng(seed)
        model = sofa(rng)
        reference.uniform(size=7)  # length, depth, seat, back, back thickness, arm width, arm height
        assert rng.uniform() == reference.uniform()
        cushions = (len(model.parts) - 4) // 2
        assert len(model.parts) == 4 + 2 * cushions and cushions in (2, 3)
        for part in model.parts:
            for axis, half in enumerate(model.half):
                assert abs(part.center[axis]) + part.size[axis] / 2 <= half + 1e-9
            bottom, top = part.center[2] - part.size[2] / 2, part.center[2] + part.size[2] / 2
            assert bottom >= -1e-9 and top <= model.height + 1e-9
