"""The evaluation's result: overall and per-scene AP figures, as JSON and as a plain-text table.

Figures are in percent everywhere: in :class:`EvaluationResult`, its JSON and its table (the unit of the
benchmark's tables and of papers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

FIGURES = ("AP", "AP50", "AP25")


@dataclass(frozen=True)
class EvaluationResult:
    """Class-agnostic AP / AP50 / AP25 in percent (0-100); nan where undefined (no ground truth).

    ``overall`` pools every scene's matches as the benchmark does; ``per_scene`` evaluates each scene
    alone (keys in evaluation order).
    """

    overall: dict[str, float]
    per_scene: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: str = "scannet"

    def to_json(self) -> dict:
        """``{"units": "percent", "protocol", "AP", "AP50", "AP25", "per_scene": {scene: {...}}}`` (rounded to
        1e-4 percent); nan becomes None (valid JSON)."""
        return {
            "units": "percent",
            "protocol": self.protocol,
            **percent_figures(self.overall),
            "per_scene": {name: percent_figures(figures) for name, figures in self.per_scene.items()},
        }


def percent_figures(figures: dict[str, float]) -> dict[str, float | None]:
    """Figures (percent) for JSON, rounded to 1e-4 percent; nan becomes None."""
    return {key: None if math.isnan(value) else round(value, 4) for key, value in figures.items()}


def format_percent(value: float) -> str:
    """A figure (percent) with one decimal, as the tables show it; n/a for nan."""
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def format_table(result: EvaluationResult, per_scene: bool = False) -> str:
    """Plain-text table of the figures in percent (one decimal); per-scene rows above the overall one."""
    rows = list(result.per_scene.items()) if per_scene else []
    rows.append(("overall" if per_scene else "class-agnostic", result.overall))
    name_width = max(len(name) for name, _ in rows)
    header = f"{'':<{name_width}}" + "".join(f"{figure:>8}" for figure in FIGURES)
    lines = [header, "-" * len(header)]
    for index, (name, figures) in enumerate(rows):
        if per_scene and index == len(rows) - 1:
            lines.append("-" * len(header))
        lines.append(f"{name:<{name_width}}" + "".join(f"{format_percent(figures[key]):>8}" for key in FIGURES))
    return "\n".join(lines)
