"""2D features on the mesh: image-encoder patch features back-projected from posed colour frames.

UnScene3D takes DINO ViT-S/8's layer-10 'key' facet (384-d) on every 20th frame, with images
resized to 0.4x and features upsampled to image size, and gives each pixel's feature to the first
surface along its ray. Here each vertex is projected into each frame, kept only if it is the
visible surface at its pixel (rendered z-buffer depth of the mesh, or the frame's real depth map
when it has one), and takes the bilinearly interpolated feature map at its pixel, which equals
sampling the upsampled map without materialising it. Features are averaged over the frames that
see a vertex; unseen vertices get zeros (the pooling treats them as empty).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.scene import Frame, Scene

log = logging.getLogger(__name__)

DEFAULT_LAYER = 10  # 0-based transformer block whose key projection is read (official: 10)
DEFAULT_RESIZE = 0.4
DEFAULT_FRAME_STEP = 20
# A vertex is visible when its camera depth is within this of the surface depth at its pixel (metres,
# plus a fraction of the depth for far, grazing surfaces).
DEPTH_TOLERANCE = 0.05
DEPTH_TOLERANCE_RELATIVE = 0.02
# Rendered occlusion depth is computed at this fraction of the colour image size (speed).
RENDER_SCALE = 0.5
_NEAR = 0.05
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
_IMAGENET_STD = np.array([0.229, 0.224, 0.225])
_KEY_MODULE = re.compile(r"(?:^|\.)(\d+)\.attention\.(?:attention\.key|k_proj)$")


@dataclass
class FeatureMap:
    """A feature grid laid over an image: cell (i, j) is centred on pixel
    ``((j + 0.5) * cell_width - 0.5, (i + 0.5) * cell_height - 0.5)``."""

    grid: np.ndarray  # (h, w, C) float32
    cell_width: float
    cell_height: float

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear samples (M, C) at pixel coordinates (clamped to the grid's extent)."""
        h, w, _ = self.grid.shape
        gx = np.clip((x + 0.5) / self.cell_width - 0.5, 0, w - 1)
        gy = np.clip((y + 0.5) / self.cell_height - 0.5, 0, h - 1)
        x0 = np.minimum(gx.astype(np.int64), max(w - 2, 0))
        y0 = np.minimum(gy.astype(np.int64), max(h - 2, 0))
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        fx, fy = (gx - x0)[:, None], (gy - y0)[:, None]
        g = self.grid
        top = g[y0, x0] * (1 - fx) + g[y0, x1] * fx
        bottom = g[y1, x0] * (1 - fx) + g[y1, x1] * fx
        return (top * (1 - fy) + bottom * fy).astype(np.float32)


def image_feature_map(image: np.ndarray) -> FeatureMap:
    """The image itself as a feature map (one cell per pixel): used to check the projection."""
    return FeatureMap(np.asarray(image, dtype=np.float32), 1.0, 1.0)


class ImageEncoder:
    """A ViT (DINO / DINOv2 through ``transformers``) returning one block's 'key' facet per patch."""

    def __init__(self, model, *, layer: int = DEFAULT_LAYER, resize: float = DEFAULT_RESIZE, device=None) -> None:
        import torch

        self.model = model.eval()
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device)
        self.resize = resize
        patch = model.config.patch_size
        self.patch_size = int(patch if isinstance(patch, int) else patch[0])
        keys = sorted(
            ((int(m.group(1)), module) for name, module in model.named_modules() if (m := _KEY_MODULE.search(name))),
            key=lambda item: item[0],
        )
        if not keys:
            raise InputError(None, f"{type(model).__name__}: no attention key projections found")
        if not 0 <= layer < len(keys):
            raise InputError(None, f"layer {layer} does not exist: the encoder has {len(keys)} blocks")
        self.key_projection = keys[layer][1]

    def __call__(self, image: np.ndarray) -> FeatureMap:
        """Patch features of an (H, W, 3) uint8 image: resize, normalise, run, read the key facet."""
        import torch
        from PIL import Image

        height, width = image.shape[:2]
        new_w = max(self.patch_size, int(round(width * self.resize)) // self.patch_size * self.patch_size)
        new_h = max(self.patch_size, int(round(height * self.resize)) // self.patch_size * self.patch_size)
        resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR), dtype=np.float64) / 255.0
        pixels = torch.from_numpy(((resized - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(2, 0, 1)[None]).float()
        captured = {}
        hook = self.key_projection.register_forward_hook(lambda _m, _i, out: captured.__setitem__("key", out))
        try:
            with torch.no_grad():
                self.model(pixel_values=pixels.to(self.device), interpolate_pos_encoding=True)
        finally:
            hook.remove()
        grid_h, grid_w = new_h // self.patch_size, new_w // self.patch_size
        tokens = captured["key"][0, -grid_h * grid_w :]  # drop the CLS (and register) tokens
        grid = tokens.reshape(grid_h, grid_w, -1).float().cpu().numpy()
        # the grid covers the image resized to new_w x new_h: one cell spans this many original pixels
        return FeatureMap(grid, width / grid_w, height / grid_h)


def load_encoder(
    name_or_path: str | Path, *, layer: int = DEFAULT_LAYER, resize: float = DEFAULT_RESIZE, device=None
) -> ImageEncoder:
    """A DINO ViT (``ViTModel``) or DINOv2 (``Dinov2Model``) from a hub id or a local folder.

    Hub ids are fetched by ``transformers`` (cached); a folder must hold ``config.json`` + weights.
    """
    from transformers import AutoConfig, AutoModel

    if str(name_or_path).startswith(("/", "./", "../", "~")) and not Path(name_or_path).expanduser().is_dir():
        raise InputError(name_or_path, "encoder folder not found (expected a hub id or a folder with config.json)")
    try:
        config = AutoConfig.from_pretrained(str(name_or_path))
        model = AutoModel.from_pretrained(str(name_or_path), config=config)
    except (OSError, ValueError) as error:
        where = Path(name_or_path) if Path(name_or_path).exists() else None
        raise InputError(where, f"cannot load image encoder {name_or_path!r}: {error}") from None
    return ImageEncoder(model, layer=layer, resize=resize, device=device)


def _project(
    vertices: np.ndarray, pose: np.ndarray, intrinsic: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y) and camera depth z of world points (OpenCV camera, cam-to-world pose)."""
    cam = (vertices - pose[:3, 3]) @ pose[:3, :3]
    z = cam[:, 2]
    safe = np.where(z > _NEAR, z, 1.0)
    return intrinsic[0, 0] * cam[:, 0] / safe + intrinsic[0, 2], intrinsic[1, 1] * cam[:, 1] / safe + intrinsic[1, 2], z


def _scaled_intrinsic(intrinsic: np.ndarray, scale: float) -> np.ndarray:
    scaled = intrinsic.astype(np.float64).copy()
    scaled[:2, :2] *= scale
    scaled[:2, 2] = (scaled[:2, 2] + 0.5) * scale - 0.5
    return scaled


def _surface_depth(
    scene: Scene, frame: Frame, real: np.ndarray | None, image_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(depth map in metres, its intrinsic): the frame's real depth, else the mesh rendered with a z-buffer."""
    if real is not None:
        intrinsic = frame.depth_intrinsic if frame.depth_intrinsic is not None else frame.intrinsic
        if frame.depth_intrinsic is None and real.shape[:2] != image_size[::-1]:
            intrinsic = _scaled_intrinsic(frame.intrinsic, real.shape[1] / image_size[0])
        return real, intrinsic
    from unscene3d.synthetic.render import rasterize

    width, height = image_size
    size = (max(1, int(round(width * RENDER_SCALE))), max(1, int(round(height * RENDER_SCALE))))
    intrinsic = _scaled_intrinsic(frame.intrinsic, size[0] / width)
    no_colour = np.zeros((len(scene.vertices), 3), dtype=np.uint8)
    _, depth = rasterize(scene.vertices, scene.faces, no_colour, frame.pose, intrinsic, size)
    return depth, intrinsic


def visible_vertices(
    scene: Scene, frame: Frame, image_size: tuple[int, int], *, occlusion: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the vertices a frame sees and their pixel coordinates (x, y).

    Without ``occlusion``, every vertex in front of the camera that projects into the image counts.
    """
    width, height = image_size
    x, y, z = _project(scene.vertices, frame.pose, frame.intrinsic)
    seen = (z > _NEAR) & (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)
    real_depth = frame.depth_image() if occlusion and seen.any() else None
    if occlusion and seen.any() and real_depth is None and not scene.has_faces:
        log.warning("%s: point cloud without depth maps: frame %s projected without occlusion", scene.name, frame.name)
    elif occlusion and seen.any():
        depth, intrinsic = _surface_depth(scene, frame, real_depth, image_size)
        dx, dy, dz = _project(scene.vertices[seen], frame.pose, intrinsic)
        col = np.clip(np.round(dx).astype(np.int64), 0, depth.shape[1] - 1)
        row = np.clip(np.round(dy).astype(np.int64), 0, depth.shape[0] - 1)
        surface = depth[row, col]
        ok = (surface > 0) & (np.abs(dz - surface) < DEPTH_TOLERANCE + DEPTH_TOLERANCE_RELATIVE * dz)
        seen[np.flatnonzero(seen)[~ok]] = False
    index = np.flatnonzero(seen)
    return index, x[index], y[index]


def backproject_features(
    scene: Scene,
    feature_fn: Callable[[np.ndarray], FeatureMap],
    *,
    frames: Sequence[Frame] | None = None,
    occlusion: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Average, per vertex, the features of the frames that see it.

    ``feature_fn`` maps a frame's colour image to a :class:`FeatureMap`. Returns ((N, C) float32
    features, zeros where no frame sees the vertex; (N,) int number of frames that saw each vertex).
    """
    frames = list(scene.frames if frames is None else frames)
    if not frames:
        raise InputError(scene.source or scene.name, "the scan has no posed colour frames for 2D features")
    total: np.ndarray | None = None
    counts = np.zeros(scene.num_vertices, dtype=np.int64)
    for frame in frames:
        image = frame.color_image()
        index, x, y = visible_vertices(scene, frame, (image.shape[1], image.shape[0]), occlusion=occlusion)
        if len(index) == 0:
            log.warning("%s: frame %s sees no part of the mesh (pose pointing away?); skipped", scene.name, frame.name)
            continue
        values = feature_fn(image).sample(x, y)
        if total is None:
            total = np.zeros((scene.num_vertices, values.shape[1]), dtype=np.float64)
        total[index] += values
        counts[index] += 1
    if total is None:
        log.warning("%s: no frame sees the mesh; 2D features are empty", scene.name)
        return np.zeros((scene.num_vertices, 1), dtype=np.float32), counts
    features = np.zeros_like(total, dtype=np.float32)
    seen = counts > 0
    features[seen] = (total[seen] / counts[seen, None]).astype(np.float32)
    return features, counts


def encoder_vertex_features(
    scene: Scene,
    encoder: str | Path | ImageEncoder,
    *,
    frame_step: int = DEFAULT_FRAME_STEP,
    layer: int = DEFAULT_LAYER,
    device=None,
) -> np.ndarray:
    """(N, C) encoder features per vertex from every ``frame_step``-th frame of the scan (zeros where unseen).

    ``frame_step`` counts the scan's frames as listed (pass 1 when they are already subsampled).
    """
    if not scene.frames:
        raise InputError(scene.source or scene.name, "2D features need posed colour frames; the scan has none")
    if frame_step < 1:
        raise InputError(None, f"frame_step must be at least 1, got {frame_step}")
    model = encoder if isinstance(encoder, ImageEncoder) else load_encoder(encoder, layer=layer, device=device)
    features, counts = backproject_features(scene, model, frames=scene.frames[::frame_step])
    log.debug("%s: 2D features on %d of %d vertices", scene.name, int((counts > 0).sum()), scene.num_vertices)
    return features
