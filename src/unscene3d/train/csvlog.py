"""The CSV log of the training loop (pretraining and self-training): one row per step, resumable."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unscene3d.io.atomic import atomic_write_text


def prepare_log(path: Path, columns: Sequence[str], start_step: int) -> None:
    """Create the log with its header, or on resume drop rows past the checkpoint (those steps are redone)."""
    if start_step == 0 or not path.is_file():
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerow(columns)
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) <= start_step]
    atomic_write_text(path, "".join(",".join(row) + "\n" for row in kept))


def append_log(path: Path, row: Sequence[Any]) -> None:
    """Append one step's row."""
    with open(path, "a", newline="") as handle:
        csv.writer(handle).writerow(row)
