"""Up-front checks of command-line inputs: numbers, devices and output paths.

Commands run them before reading scans or computing anything, so a bad option or an output path that
cannot be written fails in a second with one line, and leaves nothing behind.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from unscene3d.errors import InputError, display_path

# Counts and seeds above this are typos, and would overflow the 32-bit integers of numba and torch code.
MAX_COUNT = 2**31 - 1
# The oversegmentation computes in float32, as the ScanNet Segmentator does.
FLOAT32_MAX = 3.4028234663852886e38


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
