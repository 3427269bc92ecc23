"""Errors raised for bad user input.

Every loader and command raises :class:`InputError` for a problem with a file the user gave, so the
CLI can print one clear line (file + problem) instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def display_path(path: str | Path) -> str:
    """A path as printable text: bytes that are not UTF-8 (kept as surrogates by Python) shown as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


class InputError(ValueError):
    """A user-supplied file or argument is missing, malformed or inconsistent."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{display_path(self.path)}: {problem}" if self.path is not None else problem)

    def __reduce__(self) -> tuple[type[InputError], tuple[Path | None, str]]:
        # so that an error raised in a worker process reaches the caller as itself
        return type(self), (self.path, self.problem)


@contextmanager
def about(path: str | Path) -> Iterator[None]:
    """Name ``path`` in input errors raised inside the block that name no file (e.g. from array checks)."""
    try:
        yield
    except InputError as error:
        if error.path is not None:
            raise
        raise InputError(path, error.problem) from None
