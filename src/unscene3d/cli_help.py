"""Help screens that show what a user types: a flag takes no value, so its help shows no value type.

Typer 0.2x prints ``<bool>`` beside every flag (``--force <bool>``), as if it took a value; its own
``--help`` included. Giving flags an empty metavar removes that and changes nothing else (a flag's
metavar is never used to parse it).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup


def _flags_without_type(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose help shows flags without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))


class Group(TyperGroup):
    """The top-level command (its ``--verbose``, ``--debug``, ``--version`` flags) without types either."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))
