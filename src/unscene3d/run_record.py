"""What made a folder of results: its scans by content, the options that change the results and the code
version, so that a re-run can tell what it may reuse.

A scan is known by a BLAKE2b digest of the bytes it is read from (names repeat: ``other/mini.ply`` is not
``mini.ply``). Reading every scan again on each re-run would be slow for large datasets, so a digest
recorded with a file's size and modification time is reused while both are unchanged.

``RUN_DIR/run.json`` (``fit`` and ``train`` run folders)::

    {"format_version": 1, "command": "fit",
     "code": {"unscene3d": "0.1.0", "source": "<digest of the package's files>"},
     "scans": {"<scene>": {"path": ..., "size": ..., "mtime_ns": ..., "blake2b": ...}},
     "options": {...}}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from unscene3d.errors import InputError
from unscene3d.io.atomic import atomic_write_text

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    """A file's (or a dataset folder's) content digest, with what tells whether it may have changed."""

    path: str
    size: int
    mtime_ns: int
    blake2b: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileDigest:
        return cls(str(data["path"]), int(data["size"]), int(data["mtime_ns"]), str(data["blake2b"]))


def _files_under(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def content_digest(path: str | Path, known: Mapping[str, FileDigest] | None = None) -> FileDigest:
    """The digest of a file's bytes, or of a folder's files (relative names and bytes, in sorted order).

    A ``known`` digest of the same absolute path, size and modification time is returned without reading.

    Raises:
        InputError: the path is missing or unreadable.
    """
    path = Path(path)
    absolute = str(path.absolute())
    try:
        files = _files_under(path)
        stats = [file.stat() for file in files]
        size, mtime = sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
        cached = (known or {}).get(absolute)
        if cached is not None and (cached.size, cached.mtime_ns) == (size, mtime):
            return cached
        digest = hashlib.blake2b(digest_size=16)
        for file in files:
            if file != path:  # a folder's file: its name is part of the content
                digest.update(str(file.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
            with open(file, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
    except OSError as error:
        raise InputError(path, f"cannot read it to record its content: {error.strerror or error}") from None
    return FileDigest(absolute, size, mtime, digest.hexdigest())


def scan_digest(scan: str | Path, known: Mapping[str, FileDigest] | None = None) -> FileDigest:
    """:func:`content_digest` of what :func:`~unscene3d.io.scan.load_scan` reads of a scan: its mesh or
    point-cloud file, or a dataset folder's files (a ScanNet folder: its mesh; frames are not included)."""
    from unscene3d.io.scan import mesh_file

    return content_digest(mesh_file(scan), known)


@lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    """The package version and a digest of the package's own files (sources and shipped model), which
    changes with any edit of the code between releases."""
    from unscene3d import __version__

    package = Path(__file__).resolve().parent
    digest = hashlib.blake2b(digest_size=8)
    for file in sorted(package.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".so", ".pyd", ".pyc"):
            digest.update(str(file.relative_to(package)).encode() + b"\0" + file.read_bytes())
    return {"unscene3d": __version__, "source": digest.hexdigest()}


@dataclass(frozen=True)
class RunRecord:
    """What a run folder was made from (module docstring)."""

    command: str
    scans: dict[str, FileDigest]
    options: dict[str, Any]
    code: dict[str, str]

    def to_json(self) -> str:
        data = {"format_version": FORMAT_VERSION, "command": self.command, "code": self.code,
                "scans": {name: digest.to_dict() for name, digest in sorted(self.scans.items())},
                "options": self.options}
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def known_digests(self) -> dict[str, FileDigest]:
        """The scans' digests by path, for :func:`content_digest`'s ``known``."""
        return {digest.path: digest for digest in self.scans.values()}


def read_record(run_dir: str | Path) -> RunRecord | None:
    """The run folder's ``run.json``, or None when it has none.

    Raises:
        InputError: a ``run.json`` that cannot be read.
    """
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        return RunRecord(str(data["command"]), {name: FileDigest.from_dict(d) for name, d in data["scans"].items()},
                         dict(data["options"]), dict(data["code"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(path, f"unreadable run record: {error}") from None


def write_record(run_dir: str | Path, record: RunRecord) -> None:
    atomic_write_text(Path(run_dir) / RUN_FILE, record.to_json())


def scan_records(scans: Sequence[Path], names: Sequence[str],
                 known: Mapping[str, FileDigest] | None = None) -> dict[str, FileDigest]:
    """Scene name -> digest of each scan (``known`` digests reused while their files are unchanged)."""
    return {name: scan_digest(scan, known) for scan, name in zip(scans, names)}


def code_difference(saved: Mapping[str, str], current: Mapping[str, str] | None = None) -> str | None:
    """How the code that made a run differs from this code: a release (a reason to stop), else None; an
    edit of the same release is logged (a developer's re-run continues with the edited code)."""
    current = current or code_version()
    if saved.get("unscene3d") != current["unscene3d"]:
        return f"made by unscene3d {saved.get('unscene3d')}, this is {current['unscene3d']}"
    if saved.get("source") != current["source"]:
        log.warning("the run was made by another build of unscene3d %s (package files differ); continuing",
                    current["unscene3d"])
    return None


def changed_scans(saved: Mapping[str, FileDigest], current: Mapping[str, FileDigest]) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, removed) scene names of ``current`` against ``saved``, each sorted; a scan is
    changed when its content differs (its path may move freely)."""
    added = sorted(set(current) - set(saved))
    removed = sorted(set(saved) - set(current))
    changed = sorted(name for name in set(saved) & set(current) if saved[name].blake2b != current[name].blake2b)
    return added, changed, removed


def names_phrase(names: Sequence[str], limit: int = 3) -> str:
    """``a, b, c and 4 more``: a list of names short enough for one line."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def training_record(run_dir: str | Path, pairs: Sequence[tuple[Path, Path]]) -> RunRecord:
    """``train``'s record of a run folder: its scans and its pseudo-mask files by content (``pairs``: the
    (npz, scan) of each training scan). Write it (:func:`write_record`) once checked.

    Raises:
        InputError: the folder holds a run trained on other scans or pseudo masks, by another command or
            release, or rounds without a record; one line naming what differs.
    """
    run_dir = Path(run_dir)
    saved = read_record(run_dir)
    if saved is None and any(run_dir.glob("round_*")):
        raise InputError(run_dir, f"holds training rounds but no {RUN_FILE} (made by an older unscene3d): what it "
                                  "was trained on cannot be checked; choose a new folder")
    scans = {npz.stem: scan_digest(scan, None if saved is None else saved.known_digests()) for npz, scan in pairs}
    pseudo = {npz.stem: content_digest(npz).blake2b for npz, _ in pairs}
    record = RunRecord("train", scans, {"pseudo_masks": pseudo}, code_version())
    if saved is None:
        return record
    if saved.command != record.command:
        raise InputError(run_dir, f"holds a run of `unscene3d {saved.command}`, not of train; choose a new folder")
    if (difference := code_difference(saved.code)) is not None:
        raise InputError(run_dir, f"{difference}; choose a new folder")
    for what, names in zip(("new", "changed", "missing"), changed_scans(saved.scans, scans)):
        if names:
            raise InputError(run_dir, f"the run was trained on other scans ({what}: {names_phrase(names)}); "
                                      "choose a new folder")
    before = saved.options.get("pseudo_masks", {})
    if differing := sorted(name for name in pseudo if before.get(name) != pseudo[name]):
        raise InputError(run_dir, f"the run was trained on other pseudo masks (of {names_phrase(differing)}); "
                                  "choose a new folder")
    return record
