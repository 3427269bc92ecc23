"""Deterministic construction of a network: its initial weights from a seed, without touching the caller's RNG."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)


def seeded(build: Callable[[], M], seed: int | None) -> M:
    """``build()``; with a ``seed``, under a forked torch RNG seeded with it (same seed, same weights)."""
    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
