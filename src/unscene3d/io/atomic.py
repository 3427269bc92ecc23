"""Atomic file output: write to a temp file in the target's folder, then rename it into place.

A crash or an exception mid-write never leaves a half-written file under the final name, and readers
never see a partial file, because ``os.replace`` within one folder (one file system) is atomic.

A process killed mid-write (SIGKILL, power loss) cannot remove its temp file. Temp files carry the
writer's process id (``.<name>.unscene3d-<pid>-<random>.tmp``), so the next run removes those of
processes that no longer exist (:func:`remove_stale_temps`) without touching a concurrent writer's.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from glob import escape as glob_escape
from pathlib import Path

_TEMP_PATTERN = re.compile(r"\..+\.unscene3d-(\d+)-[^.]*\.tmp")


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.unscene3d-{os.getpid()}-"


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The parent folder is created when missing. On an exception the temp file is removed and the
    exception propagates; an existing file at ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file private (0600); give the result the mode a plain open() would have.
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    os.chmod(tmp, mode)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_symlink(link: str | Path, points_to: str | Path) -> None:
    """Make ``link`` a symbolic link to ``points_to``, replacing any previous link atomically."""
    link = Path(link)
    tmp = link.with_name(f"{_temp_prefix(link)}link.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(points_to, tmp)
    os.replace(tmp, link)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(folder: str | Path, *, target: str | Path | None = None) -> list[Path]:
    """Remove the temp files that killed runs left anywhere under ``folder``; return them.

    With ``target`` (an output file), only that file's temp files beside it are looked at, so a single
    output file does not make the whole folder around it be walked. Only files named by
    :func:`atomic_output` or :func:`atomic_symlink` whose writing process no longer exists on this
    machine are removed.
    """
    if target is not None:
        target = Path(target)
        candidates = list(target.parent.glob(glob_escape(f".{target.name}.") + "*"))
    else:
        # A temp link to a folder (a checkpoint link) is listed among the folders.
        candidates = [Path(parent) / name for parent, folders, files in os.walk(folder) for name in files + folders]
    removed: list[Path] = []
    for path in candidates:
        match = _TEMP_PATTERN.fullmatch(path.name)
        if match and (path.is_symlink() or path.is_file()) and not _process_exists(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
