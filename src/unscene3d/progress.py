"""Progress reporting for loops over scans: one log line per item with rate and ETA."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """Seconds as ``1h02m03s`` / ``2m03s`` / ``4.2s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


def progress_log(items: Sequence[T] | Iterable[T], description: str, *, logger: logging.Logger = log) -> Iterator[T]:
    """Yield ``items``, logging before each one how far along the loop is, its rate and its ETA."""
    items = list(items)
    total = len(items)
    start = time.perf_counter()
    for index, item in enumerate(items):
        elapsed = time.perf_counter() - start
        if index == 0:
            logger.info("%s: 0/%d", description, total)
        else:
            rate = index / elapsed if elapsed > 0 else float("inf")
            eta = (total - index) / rate if rate > 0 else float("inf")
            logger.info(
                "%s: %d/%d, %.2f items/s, elapsed %s, ETA %s",
                description, index, total, rate, format_duration(elapsed), format_duration(eta),
            )
        yield item
    logger.info("%s: %d/%d done in %s", description, total, total, format_duration(time.perf_counter() - start))
