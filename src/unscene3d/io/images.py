"""Colour and depth images of camera frames (ScanNet's SensReader export: JPEG colour, 16-bit PNG depth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unscene3d.errors import InputError

# ScanNet stores depth as uint16 millimetres.
DEPTH_UNITS_PER_METRE = 1000.0


def _open_image(path: Path, *, load: bool = True):
    from PIL import Image, UnidentifiedImageError  # Pillow costs start-up time commands without frames skip

    if not path.is_file():
        raise InputError(path, "no such image file")
    try:
        image = Image.open(path)
        if load:
            image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(path, f"cannot read image ({error})") from None
    return image


_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I")


def check_image(path: str | Path, *, depth: bool = False) -> None:
    """Check that ``path`` is an image file (a 16-bit one for ``depth``), reading only its header: fast,
    for checks up front."""
    path = Path(path)
    with _open_image(path, load=False) as image:
        if depth and image.mode not in _DEPTH_MODES:
            raise InputError(path, f"expected a 16-bit single-channel depth image, got mode {image.mode!r}")


def read_color_image(path: str | Path) -> np.ndarray:
    """Read a colour image as (H, W, 3) uint8 RGB (grey or RGBA images are converted)."""
    image = _open_image(Path(path))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_depth_image(path: str | Path, units_per_metre: float = DEPTH_UNITS_PER_METRE) -> np.ndarray:
    """Read a 16-bit depth PNG as (H, W) float32 metres; 0 stays 0 (= unknown)."""
    path = Path(path)
    image = _open_image(path)
    if image.mode not in _DEPTH_MODES:
        raise InputError(path, f"expected a 16-bit single-channel depth image, got mode {image.mode!r}")
    depth = np.asarray(image)
    return (depth.astype(np.float32) / np.float32(units_per_metre)).astype(np.float32)
