"""Progress reporting: one log line per item of a loop over scans, and a moving rate for ETAs that follow a
change of speed."""

from __future__ import annotations

import logging
import time
from collections import deque
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


class MovingRate:
    """Items per second over about the last ``window`` seconds, for an ETA that corrects itself.

    The average since the start says little about the time left once the speed changes (another program
    starts or ends, a slow first step), and keeps saying it for a long time; the rate over a recent window
    follows the change within ``window`` seconds.
    """

    def __init__(self, window: float = 60.0, *, now: float | None = None) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque([(time.perf_counter() if now is None else now, 0)])

    def update(self, done: int, now: float | None = None) -> None:
        """Record that ``done`` items are finished at ``now`` (default: the current time)."""
        now = time.perf_counter() if now is None else now
        self._samples.append((now, done))
        # Keep the newest sample that is at least a window old, so the rate always spans a full window.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def rate(self) -> float:
        """Items per second over the window (0 before the first item)."""
        (first_time, first_done), (last_time, last_done) = self._samples[0], self._samples[-1]
        return (last_done - first_done) / (last_time - first_time) if last_time > first_time else 0.0

    def eta(self, remaining: int) -> float:
        """Seconds for ``remaining`` more items at the current rate (infinite before any rate is known)."""
        rate = self.rate()
        return remaining / rate if rate > 0 else float("inf")
