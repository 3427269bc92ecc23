"""Saving, loading and comparing the configuration of a training run, one way for every kind of run.

A run configuration (:class:`unscene3d.train.pretrain.PretrainConfig`,
:class:`unscene3d.train.selftrain.SelfTrainConfig`) is a frozen dataclass with ``to_dict`` (JSON-ready,
sections as nested dicts) and a validating ``from_dict``. A run stores it in every checkpoint's
``state.json`` (key ``train``) and self-training also in ``RUN_DIR/config.json``; a resumed or repeated run
must match it, and when it does not the error names the nested keys that differ
(``model.decoder.num_queries``) rather than only the section.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from unscene3d.errors import InputError
from unscene3d.io.atomic import atomic_write_text
from unscene3d.model.checkpoint import Checkpoint

_ABSENT = object()


class RunConfig(Protocol):
    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any: ...


C = TypeVar("C", bound=RunConfig)


def config_diff(saved: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted names of the keys whose values differ between two ``to_dict`` outputs, nested sections
    descended into (``model.decoder.num_queries``); a key present on one side only counts. Sorted."""
    changed = []
    for key in sorted(set(saved) | set(new)):
        old, value = saved.get(key, _ABSENT), new.get(key, _ABSENT)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            changed += [f"{key}.{name}" for name in config_diff(old, value)]
        elif old is _ABSENT or value is _ABSENT or old != value:
            changed.append(key)
    return changed


def _differences(saved: RunConfig, expected: RunConfig | None) -> str:
    """The differing keys as one comma-separated phrase, or "" when ``expected`` is None or the same."""
    return "" if expected is None else ", ".join(config_diff(saved.to_dict(), expected.to_dict()))


def write_config(path: Path, config: RunConfig) -> None:
    """Store ``config`` as indented JSON (atomically)."""
    atomic_write_text(path, json.dumps(config.to_dict(), indent=2) + "\n")


def read_run_config(path: Path, cls: type[C], expected: C | None = None) -> C:
    """The configuration stored at ``path`` by :func:`write_config`.

    Raises:
        InputError: unreadable, or different from ``expected`` (when given).
    """
    try:  # an InputError of from_dict is a ValueError: it is re-raised naming the file
        saved = cls.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(path, f"unreadable run configuration: {error}") from None
    if changed := _differences(saved, expected):
        raise InputError(path, f"the run folder holds a run with another configuration (differs in: {changed}); "
                               "choose a new folder or drop the options")
    return saved


def checkpoint_config(checkpoint: Checkpoint, cls: type[C], expected: C | None = None) -> C:
    """The configuration a checkpoint was trained with.

    Raises:
        InputError: missing or unreadable, or different from ``expected`` (when given).
    """
    try:
        saved = cls.from_dict(checkpoint.state["train"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(checkpoint.folder, f"bad configuration in checkpoint: {error}") from None
    if changed := _differences(saved, expected):
        raise InputError(checkpoint.folder, f"checkpoint was made with another configuration (differs in: {changed})")
    return saved
