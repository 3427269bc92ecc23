"""Posed RGB-D frames of a synthetic room: camera placement and a vectorised z-buffer rasteriser.

Cameras follow the ScanNet / OpenCV convention: camera-to-world poses, camera x right, y down,
z forward; pixel centres at integer coordinates; depth is the camera z distance in metres (0 where
nothing is seen, e.g. over the open top of the walls). Colour and depth share one pinhole camera.
"""

from __future__ import annotations

import numpy as np

from unscene3d.scene import Frame
from unscene3d.synthetic.layout import Layout

_NEAR = 0.05  # triangles with a vertex closer than this to the camera plane are not drawn
_CANDIDATES_PER_CHUNK = 2_000_000  # pixel tests per vectorised batch (bounds peak memory)
_MIN_PITCH = np.radians(20.0)


def camera_intrinsic(image_size: tuple[int, int]) -> np.ndarray:
    """A pinhole camera with ScanNet's field of view (fx / width = 0.9, about 58 degrees across)."""
    width, height = image_size
    focal = 0.9 * width
    return np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world pose at ``eye`` looking at ``target``, image rows pointing down (world -z)."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def object_boxes(layout: Layout) -> np.ndarray:
    """Axis-aligned bounds (lo, hi) of every object, from its parts: (K, 2, 3)."""
    boxes = []
    for obj in layout.objects:
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for part in obj.parts:
            c, s = abs(np.cos(part.yaw)), abs(np.sin(part.yaw))
            sx, sy, sz = part.size
            half = np.array([c * sx + s * sy, s * sx + c * sy, sz]) / 2
            lo, hi = np.minimum(lo, np.asarray(part.center) - half), np.maximum(hi, np.asarray(part.center) + half)
        boxes.append((lo, hi))
    return np.array(boxes).reshape(-1, 2, 3)


def place_cameras(
    layout: Layout, num_frames: int, image_size: tuple[int, int], rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """Poses around the room at eye height, each looking at the room centre or at an object."""
    width, depth, _ = layout.size
    center = np.array([width / 2, depth / 2])
    radius = np.array([width / 2, depth / 2]) - 0.5
    boxes = object_boxes(layout)
    start = rng.uniform(0, 2 * np.pi)
    poses = []
    for k in range(num_frames):
        for _ in range(30):  # a spot clear of furniture (by 0.3 m)
            angle = start + 2 * np.pi * k / max(num_frames, 1) + rng.uniform(-0.3, 0.3)
            eye = np.array([*(center + rng.uniform(0.4, 0.9) * radius * [np.cos(angle), np.sin(angle)]),
                            rng.uniform(1.3, 1.7)])
            if not np.any(np.all((boxes[:, 0] - 0.3 < eye) & (eye < boxes[:, 1] + 0.3), axis=1)):
                break
        if len(boxes) and rng.random() < 0.5:
            lo, hi = boxes[rng.integers(len(boxes))]
            target = (lo + hi) / 2
        else:
            target = np.array([*(center + rng.uniform(-0.6, 0.6, 2)), rng.uniform(0.4, 0.9)])
        reach = np.linalg.norm((target - eye)[:2])
        if reach < 0.5:  # too steep to be a useful view: look across the room
            target = np.array([*(2 * center - eye[:2]), 0.6])
            reach = np.linalg.norm((target - eye)[:2])
        # Look down by at least _MIN_PITCH so that the view ends on the walls, not over their open top.
        target[2] = min(target[2], eye[2] - reach * np.tan(_MIN_PITCH))
        poses.append(look_at(eye, target))
    return poses, camera_intrinsic(image_size)


def nearest_samples(
    vertices: np.ndarray, faces: np.ndarray, pose: np.ndarray, intrinsic: np.ndarray, image_size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The surface seen at each covered pixel of one view: (pixel index row * width + column, depth in
    metres, triangle index into ``faces``, (n, 3) perspective-correct barycentric weights).

    Every triangle is tested against the pixel centres in its bounding box (triangles are grouped by
    box size so one batch is one array operation); the nearest sample wins each pixel.
    """
    width, height = image_size
    cam = (vertices - pose[:3, 3]) @ pose[:3, :3]
    z = cam[:, 2]
    in_front = np.all(z[faces] > _NEAR, axis=1)
    faces = faces[in_front]  # indices below are into these; mapped back at the end
    safe_z = np.where(z > _NEAR, z, 1.0)
    px = intrinsic[0, 0] * cam[:, 0] / safe_z + intrinsic[0, 2]
    py = intrinsic[1, 1] * cam[:, 1] / safe_z + intrinsic[1, 2]
    fx, fy, fz = px[faces], py[faces], z[faces]
    u0 = np.clip(np.ceil(fx.min(1)), 0, width).astype(np.int64)
    u1 = np.clip(np.floor(fx.max(1)), -1, width - 1).astype(np.int64)
    v0 = np.clip(np.ceil(fy.min(1)), 0, height).astype(np.int64)
    v1 = np.clip(np.floor(fy.max(1)), -1, height - 1).astype(np.int64)
    area = (fx[:, 1] - fx[:, 0]) * (fy[:, 2] - fy[:, 0]) - (fx[:, 2] - fx[:, 0]) * (fy[:, 1] - fy[:, 0])
    drawn = (u1 >= u0) & (v1 >= v0) & (np.abs(area) > 1e-12)
    # Box sizes rounded up to powers of two: a few batch shapes, little wasted testing.
    bw = 1 << np.ceil(np.log2(np.maximum(u1 - u0 + 1, 1))).astype(np.int64)
    bh = 1 << np.ceil(np.log2(np.maximum(v1 - v0 + 1, 1))).astype(np.int64)
    shape_key = np.where(drawn, bw * 65536 + bh, -1)

    pix_all, depth_all, tri_all, w_all = [], [], [], []
    for key in np.unique(shape_key[drawn]):
        sw, sh = int(key // 65536), int(key % 65536)
        group = np.flatnonzero(shape_key == key)
        gx, gy = np.meshgrid(np.arange(sw), np.arange(sh), indexing="ij")
        gx, gy = gx.ravel(), gy.ravel()
        step = max(1, _CANDIDATES_PER_CHUNK // (sw * sh))
        for begin in range(0, len(group), step):
            tri = group[begin : begin + step]
            qx, qy = u0[tri, None] + gx, v0[tri, None] + gy
            x, y, a = fx[tri], fy[tri], area[tri, None]
            w0 = ((x[:, 1, None] - qx) * (y[:, 2, None] - qy) - (x[:, 2, None] - qx) * (y[:, 1, None] - qy)) / a
            w1 = ((x[:, 2, None] - qx) * (y[:, 0, None] - qy) - (x[:, 0, None] - qx) * (y[:, 2, None] - qy)) / a
            w2 = 1.0 - w0 - w1
            inside = (qx <= u1[tri, None]) & (qy <= v1[tri, None]) & (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
            rows, cols = np.nonzero(inside)
            zt = fz[tri[rows]]
            bary = np.stack([w0[rows, cols], w1[rows, cols], w2[rows, cols]], 1) / zt
            inv_depth = bary.sum(1)
            pix_all.append(qy[rows, cols] * width + qx[rows, cols])
            depth_all.append(1.0 / inv_depth)
            tri_all.append(tri[rows])
            w_all.append(bary / inv_depth[:, None])  # perspective-correct barycentric weights

    if not pix_all:
        return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64), np.empty((0, 3))
    pix, depth = np.concatenate(pix_all), np.concatenate(depth_all)
    order = np.lexsort((depth, pix))
    first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]]  # nearest sample per pixel
    visible = np.flatnonzero(in_front)[np.concatenate(tri_all)[first]]
    return pix[first], depth[first], visible, np.concatenate(w_all)[first]


def rasterize(
    vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, pose: np.ndarray, intrinsic: np.ndarray,
    image_size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Render one view: (colour (H, W, 3) uint8, depth (H, W) float32 metres, 0 = empty); depth and
    colour are interpolated perspective-correctly (see :func:`nearest_samples`)."""
    width, height = image_size
    pix, depth, tri, weights = nearest_samples(vertices, faces, pose, intrinsic, image_size)
    color_image = np.zeros((height * width, 3), dtype=np.uint8)
    depth_image = np.zeros(height * width, dtype=np.float32)
    shade = np.einsum("nk,nkc->nc", weights, colors[faces[tri]].astype(np.float64))
    color_image[pix] = np.clip(np.round(shade), 0, 255).astype(np.uint8)
    depth_image[pix] = depth
    return color_image.reshape(height, width, 3), depth_image.reshape(height, width)


def render_frames(
    vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, poses: list[np.ndarray], intrinsic: np.ndarray,
    image_size: tuple[int, int],
) -> list[Frame]:
    """One in-memory :class:`Frame` per pose (depth registered to colour, same intrinsic)."""
    frames = []
    for k, pose in enumerate(poses):
        color, depth = rasterize(vertices, faces, colors, pose, intrinsic, image_size)
        frames.append(Frame(pose=pose, intrinsic=intrinsic.copy(), depth_intrinsic=intrinsic.copy(),
                            color=color, depth=depth, name=f"frame_{k:03d}"))
    return frames
