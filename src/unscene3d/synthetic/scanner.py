"""A simulated scanner: what a depth camera carried through a room sees of it, and how.

Real scans hold only the surfaces that some camera pose saw (no floor under a bed, no top of a tall
cabinet, nothing behind a sofa), with holes where depth fails (glass, black screens, far or grazing
surfaces), noise that grows with distance, and a density that follows how close and how often the
camera came. Here a handful of poses walk the free floor looking around and down; each renders a depth
image of the clean mesh (:func:`~unscene3d.synthetic.render.nearest_samples`), and

- :func:`seen_vertices` keeps the mesh vertices that some view saw (a z-test against its depth image),
  for a mesh like a fused reconstruction;
- :func:`depth_points` back-projects the views' pixels with depth-dependent noise, like the fused point
  cloud of an RGB-D sequence (or one Kinect frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unscene3d.synthetic.render import camera_intrinsic, look_at, nearest_samples

# Depth cameras see from about 0.4 m to 4-5 m.
NEAR, FAR = 0.4, 4.5


@dataclass
class Views:
    """Camera-to-world poses, the shared pinhole intrinsic and the image size (width, height)."""

    poses: list[np.ndarray]
    intrinsic: np.ndarray
    image_size: tuple[int, int]


def inside_polygon(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Whether each 2D point lies inside the polygon (ray casting)."""
    x, y = points[:, 0, None], points[:, 1, None]
    ax, ay = corners[:, 0], corners[:, 1]
    bx, by = np.roll(ax, -1), np.roll(ay, -1)
    crosses = ((ay > y) != (by > y)) & (x < (bx - ax) * (y - ay) / np.where(by != ay, by - ay, 1.0) + ax)
    return crosses.sum(axis=1) % 2 == 1


def walk_poses(corners: np.ndarray, blocked: np.ndarray, count: int, rng: np.random.Generator,
               image_size: tuple[int, int], height: float, margin: float = 0.35) -> Views:
    """``count`` poses at hand height on free floor (inside ``corners``, outside the (K, 2, 3) ``blocked``
    boxes), each looking at a piece of furniture or at a point on a wall below ``height``, as a person
    scanning a room points the camera at what is there."""
    lo, hi = corners.min(axis=0) + margin, corners.max(axis=0) - margin
    walls = np.stack([corners, np.roll(corners, -1, axis=0)], 1)
    wall_length = np.linalg.norm(walls[:, 1] - walls[:, 0], axis=1)
    poses = []
    for _ in range(count):
        eye = np.array([*(lo + hi) / 2, 1.4])
        for _ in range(40):
            xy = rng.uniform(lo, hi)
            near_box = np.any(np.all((blocked[:, 0, :2] - margin < xy) & (xy < blocked[:, 1, :2] + margin), axis=1))
            if inside_polygon(xy[None], corners)[0] and not near_box:
                eye = np.array([*xy, rng.uniform(1.0, 1.7)])
                break
        if len(blocked) and rng.random() < 0.5:
            lo_box, hi_box = blocked[rng.integers(len(blocked))]
            target = (lo_box + hi_box) / 2
        else:
            k = rng.choice(len(walls), p=wall_length / wall_length.sum())
            target = np.array([*(walls[k, 0] + rng.uniform(0.05, 0.95) * (walls[k, 1] - walls[k, 0])),
                               rng.uniform(0.2, min(1.8, height))])
        if np.linalg.norm((target - eye)[:2]) < 0.3:  # straight down is a poor view: look further out
            target[:2] += rng.normal(0, 1.0, 2)
        poses.append(look_at(eye, target))
    return Views(poses, camera_intrinsic(image_size), image_size)


def to_camera(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World points into the camera frame of a camera-to-world ``pose``; column by column, as a BLAS
    product of an (N, 3) by a 3 x 3 matrix gains nothing from threads and spins them up."""
    offset = points - pose[:3, 3]
    rotation = pose[:3, :3]
    return offset[:, :1] * rotation[0] + offset[:, 1:2] * rotation[1] + offset[:, 2:] * rotation[2]


def seen_vertices(vertices: np.ndarray, faces: np.ndarray, views: Views,
                  tolerance: float = 0.02) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seen (N,) bool, distance (N,) from the nearest camera that saw the vertex (inf where none), the
    index of that view (0 where none))."""
    width, height = views.image_size
    distance = np.full(len(vertices), np.inf)
    nearest = np.zeros(len(vertices), dtype=np.int64)
    for view, pose in enumerate(views.poses):
        pix, depth, _, _ = nearest_samples(vertices, faces, pose, views.intrinsic, views.image_size)
        image = np.zeros(width * height)
        image[pix] = depth
        cam = to_camera(vertices, pose)
        z = cam[:, 2]
        front = (z > NEAR) & (z < FAR)
        safe = np.where(front, z, 1.0)
        u = np.round(views.intrinsic[0, 0] * cam[:, 0] / safe + views.intrinsic[0, 2]).astype(np.int64)
        v = np.round(views.intrinsic[1, 1] * cam[:, 1] / safe + views.intrinsic[1, 2]).astype(np.int64)
        front &= (u >= 0) & (u < width) & (v >= 0) & (v < height)
        index = np.flatnonzero(front)
        surface = image[v[index] * width + u[index]]
        visible = index[(surface > 0) & (z[index] <= surface + tolerance + 0.01 * surface)]
        reach = np.linalg.norm(cam[visible], axis=1)
        closer = reach < distance[visible]
        distance[visible[closer]] = reach[closer]
        nearest[visible[closer]] = view
    return np.isfinite(distance), distance, nearest


def kinect_sigma(depth: np.ndarray) -> np.ndarray:
    """Axial noise (metres) of a structured-light depth camera at ``depth`` (grows with its square)."""
    return 0.0012 + 0.0019 * (depth - 0.4) ** 2


def depth_points(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None, views: Views,
                 rng: np.random.Generator, gains: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Back-project every view's pixels: (points (M, 3), colours (M, 3) uint8 or None, the vertex each
    point shows (the nearest corner of its triangle), the view index of each point).

    Depth gets :func:`kinect_sigma` noise and 1 mm quantisation; ``gains`` (per view, (V, 3)) scales the
    colours, as auto exposure and white balance change from frame to frame.
    """
    fx, fy, cx, cy = views.intrinsic[0, 0], views.intrinsic[1, 1], views.intrinsic[0, 2], views.intrinsic[1, 2]
    width = views.image_size[0]
    points, shades, sources, view_of = [], [], [], []
    for index, pose in enumerate(views.poses):
        pix, depth, tri, weights = nearest_samples(vertices, faces, pose, views.intrinsic, views.image_size)
        keep = (depth > NEAR) & (depth < FAR)
        pix, depth, tri, weights = pix[keep], depth[keep], tri[keep], weights[keep]
        depth = np.round((depth + rng.normal(size=len(depth)) * kinect_sigma(depth)) * 1000) / 1000
        u, v = pix % width, pix // width
        cam = np.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], 1)
        rotation = pose[:3, :3]
        points.append(cam[:, :1] * rotation[:, 0] + cam[:, 1:2] * rotation[:, 1] + cam[:, 2:] * rotation[:, 2]
                      + pose[:3, 3])
        corner = faces[tri, np.argmax(weights, axis=1)]
        sources.append(corner)
        view_of.append(np.full(len(depth), index))
        if colors is not None:
            shade = np.einsum("nk,nkc->nc", weights, colors[faces[tri]].astype(np.float64))
            shades.append(shade * (1.0 if gains is None else gains[index]))
    cloud_colors = (np.clip(np.round(np.concatenate(shades)), 0, 255).astype(np.uint8)
                    if colors is not None else None)
    return np.concatenate(points), cloud_colors, np.concatenate(sources), np.concatenate(view_of)


def voxel_first(points: np.ndarray, voxel: float) -> np.ndarray:
    """Indices of one point per occupied voxel (the first), in their input order."""
    keys = np.floor(points / voxel).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)
