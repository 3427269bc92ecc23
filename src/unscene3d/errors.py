"""Errors raised for bad user input.

Every loader and command raises :class:`InputError` for a problem with a file the user gave, so the
CLI can print one clear line (file + problem) instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A user-supplied file or argument is missing, malformed or inconsistent."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)
