"""Up-front checks of command-line inputs: numbers, devices, output paths, and what a stage needs of a scan.

Commands run them before computing anything, so a bad option, an output path that cannot be written or a
scan a stage cannot use fails at once with one line, and leaves nothing behind.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unscene3d.errors import InputError, display_path

if TYPE_CHECKING:
    from unscene3d.pseudo.pipeline import PseudoMaskOptions

# Counts and seeds above this are typos, and would overflow the 32-bit integers of numba and torch code.
MAX_COUNT = 2**31 - 1
# The oversegmentation computes in float32, as the ScanNet Segmentator does.
FLOAT32_MAX = 3.4028234663852886e38
# A model id on the Hugging Face hub: "name" or "owner/name".
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def _text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def check_number(
    option: str,
    value: float | None,
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
) -> None:
    """``value`` (None = not given) must be finite, ``>= low``, ``<= high`` and ``> above`` where given."""
    if value is None:
        return
    if not math.isfinite(value):
        raise InputError(None, f"{option} must be a finite number, got {value}")
    if low is not None and value < low:
        raise InputError(None, f"{option} must be at least {_text(low)}, got {_text(value)}")
    if high is not None and value > high:
        raise InputError(None, f"{option} must be at most {_text(high)}, got {_text(value)}")
    if above is not None and value <= above:
        raise InputError(None, f"{option} must be greater than {_text(above)}, got {_text(value)}")


def check_count(option: str, value: int | None, *, low: int = 1) -> None:
    """An integer option (None = not given) in ``low .. MAX_COUNT``."""
    check_number(option, value, low=low, high=MAX_COUNT)


def check_choice(option: str, value: str | None, choices: Sequence[str]) -> None:
    """A text option (None = not given) is one of ``choices``; the error names the option as typed."""
    if value is not None and value not in choices:
        raise InputError(None, f"{option} must be one of {', '.join(choices)}, got {value!r}")


def check_encoder(encoder: str | None) -> None:
    """``--encoder`` names a local folder that exists (with the model's config.json) or looks like a hub id
    (``name`` or ``owner/name``); checked before any scan is read, so a typo fails at once, not after hours."""
    if encoder is None:
        return
    folder = Path(encoder).expanduser()
    if encoder.startswith(("/", "./", "../", "~")) or folder.exists():
        if not folder.is_dir():
            raise InputError(encoder, "--encoder: no such folder (give a folder with the model's config.json, or a "
                                      "hub id such as facebook/dino-vits8)")
        if not (folder / "config.json").is_file():
            raise InputError(encoder, "--encoder: the folder has no config.json (not a saved transformers model)")
        return
    if not _HUB_ID.fullmatch(encoder):
        raise InputError(None, f"--encoder {encoder!r} is neither a folder nor a hub id (owner/name, e.g. "
                               "facebook/dino-vits8)")


def check_device(device: str | None) -> None:
    """``--device`` names a device this machine has (checked before any scan is read)."""
    if device is None:
        return
    from unscene3d.model.sparse_backend import resolve_device

    resolve_device(device)


def _first_file_above(path: Path) -> Path | None:
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_file(path: Path, *, inputs: Iterable[Path] = ()) -> None:
    """``path`` can be written as a file: not a folder, not inside a file, not one of the ``inputs``."""
    if path.is_dir():
        raise InputError(path, "is a folder; give a file name for this output")
    blocking = _first_file_above(path)
    if blocking is not None:
        raise InputError(path, f"cannot be created: {display_path(blocking)} is a file, not a folder")
    target = path.resolve()
    if any(target == Path(source).resolve() for source in inputs):
        raise InputError(path, "is also an input; writing the output would overwrite it")


def check_output_dir(path: Path) -> None:
    """``path`` can be used as an output folder: an existing folder, or creatable as one."""
    if path.exists() and not path.is_dir():
        raise InputError(path, "exists and is not a folder; give a folder for this output")
    blocking = _first_file_above(path)
    if blocking is not None:
        raise InputError(path, f"cannot be created: {display_path(blocking)} is a file, not a folder")


def all_of(*checks: Callable[[Any], None]) -> Callable[[Any], None]:
    """One scan check that runs ``checks`` in turn."""

    def check(scene: Any) -> None:
        for one in checks:
            one(scene)

    return check


def require_voxel_grid(scene: Any) -> None:
    """The network stages put the scan on a 2 cm grid, which must be indexable."""
    from unscene3d.voxelize import check_voxel_grid

    check_voxel_grid(scene.vertices)


def require_frames(scene: Any) -> None:
    """The 2d features need posed frames whose images can be read."""
    if not scene.frames:
        raise InputError(None, "has no posed colour frames, which the 2d and both modalities project features from")
    check_frame_images(scene)


def check_frame_images(scene: Any) -> None:
    """The scan's frame images can be read (headers only: fast)."""
    from unscene3d.io.images import check_image

    for frame in scene.frames:
        if frame.color_path is not None:
            check_image(frame.color_path)
        if frame.depth_path is not None:
            check_image(frame.depth_path, depth=True)


def check_pseudo_masks(pseudo_dir: Path) -> None:
    """Read every pseudo-mask file once, so a corrupt one stops the run before training starts."""
    import zipfile
    import zlib

    from unscene3d.pseudo.pipeline import read_pseudo_masks

    if not pseudo_dir.is_dir():
        raise InputError(pseudo_dir, "no such pseudo-mask folder")
    for path in sorted(pseudo_dir.glob("*.npz")):
        try:
            read_pseudo_masks(path)
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:  # what numpy lets through from a broken .npz
            raise InputError(path, f"not a pseudo-mask file: {error}") from None


def check_pseudo_mask_inputs(
    paths: Sequence[Path],
    options: PseudoMaskOptions,
    *,
    voxel_grid: bool = False,
    ground_truth: Callable[[Any], None] | None = None,
) -> None:
    """What pseudo masks need of their scans, checked before the first is computed: an image encoder that can
    exist, scene names that can name files, a loadable backbone for 3d features (and an indexable 2 cm grid,
    as with ``voxel_grid``) or a features3d folder holding every scan's features, and readable frames for 2d
    features. ``ground_truth(scene)``, when given, checks each scan's ground truth (scans are then read with
    their own, as ``fit`` evaluates them), in the same pass."""
    from unscene3d.io.scan import CheckedScans, scan_names

    check_encoder(options.encoder)
    scan_names(paths)
    uses_3d = options.has_3d() and options.modality in ("auto", "3d", "both")
    runs_backbone = uses_3d and options.checkpoint is not None
    if runs_backbone:
        from unscene3d.features.features3d import load_backbone

        load_backbone(options.checkpoint, "cpu")
    requirements = []
    if uses_3d and options.features3d is not None:
        from unscene3d.features.folder import FeatureFolder

        requirements.append(FeatureFolder.open(options.features3d).check)
    if options.modality in ("2d", "both"):
        requirements.append(require_frames)
    elif options.needs_frames():  # auto with an encoder: the frames of the scans that have them are used
        requirements.append(check_frame_images)
    if runs_backbone or voxel_grid:
        requirements.append(require_voxel_grid)
    if ground_truth is not None:
        requirements.append(ground_truth)
    CheckedScans(paths, check=all_of(*requirements), keep_vertices=0, load_frames=options.needs_frames(),
                 load_gt=ground_truth is not None)
