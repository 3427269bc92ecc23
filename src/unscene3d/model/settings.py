"""JSON round trip of flat settings dataclasses (tuples stored as lists), shared by the model configs."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from unscene3d.errors import InputError

T = TypeVar("T")


def settings_to_dict(settings: Any) -> dict[str, Any]:
    """JSON-ready fields of a flat dataclass (tuples as lists)."""
    return {f.name: list(v) if isinstance(v := getattr(settings, f.name), tuple) else v
            for f in dataclasses.fields(settings)}


def settings_from_dict(cls: type[T], data: dict[str, Any], kind: str) -> T:
    """The dataclass ``cls`` from :func:`settings_to_dict`'s output; unknown keys are an InputError that
    names ``kind`` (e.g. "backbone")."""
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise InputError(None, f"unknown {kind} settings: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
