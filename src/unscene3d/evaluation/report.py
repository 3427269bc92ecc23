"""The evaluation report: a static HTML page (``index.html``) with the figures overall and per scene,
the pooled precision/recall curves at IoU 0.25 and 0.5 and the AP at every IoU threshold (PNG files beside
it), and ``evaluation.json`` with the same figures. All figures in percent.

    index.html          the report (links the files below, and the 3D view when one was written)
    evaluation.json     overall and per-scene AP / AP50 / AP25, AP per IoU threshold (percent)
    pr_iou25.png        precision/recall at IoU 0.25 (the AP25 curve)
    pr_iou50.png        precision/recall at IoU 0.5 (the AP50 curve)
    ap_per_iou.png      AP at IoU 0.25 and 0.50 to 0.90 by 0.05 (their mean over 0.50-0.90 is AP)
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from unscene3d.evaluation.ap import ap_per_threshold, pooled_curves, summarize
from unscene3d.evaluation.matching import AP25_THRESHOLD, AP_THRESHOLDS, SceneMatches
from unscene3d.evaluation.result import FIGURES, EvaluationResult, format_percent, percent_figures
from unscene3d.io.atomic import atomic_write_bytes, atomic_write_text

PR_CURVE_FILES = {AP25_THRESHOLD: "pr_iou25.png", AP_THRESHOLDS[0]: "pr_iou50.png"}
AP_PER_IOU_FILE = "ap_per_iou.png"


def write_report(
    out_dir: str | Path,
    matches: Mapping[str, SceneMatches],
    *,
    protocol: str,
    sources: Mapping[str, str],
    view_link: str | None = None,
    view_note: str | None = None,
) -> EvaluationResult:
    """Write the report of :func:`~unscene3d.evaluation.match_scenes`' output into ``out_dir``.

    ``sources``: what was compared, shown at the top (e.g. ``{"predictions": ..., "ground truth": ...}``);
    ``view_link``: a 3D view page to link (relative to ``out_dir``), or ``view_note`` saying why there is none.
    """
    out_dir = Path(out_dir)
    scenes = list(matches.values())
    result = summarize(dict(matches), protocol)
    aps = ap_per_threshold(scenes)
    curves = pooled_curves(scenes)

    for threshold, name in PR_CURVE_FILES.items():
        atomic_write_bytes(out_dir / name, _pr_curve_png(threshold, curves.get(threshold), aps[threshold]))
    atomic_write_bytes(out_dir / AP_PER_IOU_FILE, _ap_per_iou_png(aps, result.overall["AP"]))
    data = result.to_json()
    data["ap_per_iou"] = {f"{threshold:.2f}": value for threshold, value in percent_figures(
        {threshold: aps[threshold] for threshold in sorted(aps)}).items()}
    atomic_write_text(out_dir / "evaluation.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(out_dir / "index.html", _report_html(result, sources, view_link, view_note))
    return result


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: same bytes each run
    return buffer.getvalue()


def _pr_curve_png(threshold: float, curve: tuple[np.ndarray, np.ndarray] | None, ap: float) -> bytes:
    figure = Figure(figsize=(4.8, 3.8), dpi=100, layout="constrained")
    axes = figure.subplots()
    if curve is None:
        axes.text(0.5, 0.5, "no ground-truth instance counts", ha="center", va="center")
    else:
        precision, recall = curve
        # Points come in increasing score (decreasing recall); draw them from recall 0 outwards.
        axes.plot(recall[::-1], precision[::-1], marker=".", markersize=4, linewidth=1.2)
        axes.fill_between(recall[::-1], precision[::-1], alpha=0.15)
    axes.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
             title=f"IoU {threshold:.2f}: AP {format_percent(ap)} %")
    axes.grid(alpha=0.3)
    return _png(figure)


def _ap_per_iou_png(aps: Mapping[float, float], mean_ap: float) -> bytes:
    figure = Figure(figsize=(4.8, 3.8), dpi=100, layout="constrained")
    axes = figure.subplots()
    thresholds = sorted(aps)
    values = [aps[t] if not math.isnan(aps[t]) else np.nan for t in thresholds]
    axes.plot(thresholds, values, marker="o", linewidth=1.2)
    if not math.isnan(mean_ap):
        axes.axhline(mean_ap, linestyle="--", linewidth=1, color="grey",
                     label=f"AP (mean over 0.50-0.90) {format_percent(mean_ap)} %")
        axes.legend(loc="upper right", fontsize=8)
    axes.set(xlim=(0.2, 0.95), ylim=(0, 100), xlabel="IoU threshold", ylabel="AP (%)", title="AP per IoU threshold")
    axes.grid(alpha=0.3)
    return _png(figure)


def _report_html(
    result: EvaluationResult, sources: Mapping[str, str], view_link: str | None, view_note: str | None
) -> str:
    def row(name: str, figures: Mapping[str, float], tag: str = "td") -> str:
        cells = "".join(f"<td>{format_percent(figures[key])}</td>" for key in FIGURES)
        return f"<tr><{tag}>{html.escape(name)}</{tag}>{cells}</tr>"

    header = "<tr><th>scene</th>" + "".join(f"<th>{key}</th>" for key in FIGURES) + "</tr>"
    rows = [row(name, figures) for name, figures in sorted(result.per_scene.items())]
    compared = "".join(f"<li>{html.escape(what)}: <code>{html.escape(str(path))}</code></li>"
                       for what, path in sources.items())
    if view_link is not None:
        view = f'<p><a href="{html.escape(view_link)}">Open the 3D view</a> of the scans, ground truth and predictions.</p>'
    else:
        view = f"<p>No 3D view: {html.escape(view_note or 'not requested')}.</p>"
    images = "".join(
        f'<figure><a href="{name}"><img src="{name}" alt="{alt}" width="480"></a></figure>'
        for name, alt in [(PR_CURVE_FILES[AP25_THRESHOLD], "precision/recall at IoU 0.25"),
                          (PR_CURVE_FILES[AP_THRESHOLDS[0]], "precision/recall at IoU 0.5"),
                          (AP_PER_IOU_FILE, "AP per IoU threshold")]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>unscene3d evaluation</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
tfoot td {{ font-weight: 600; }}
figure {{ display: inline-block; margin: 0 12px 12px 0; }}
code {{ background: #f2f2f2; padding: 0 3px; }}
</style></head>
<body>
<h1>Evaluation</h1>
<ul>{compared}</ul>
<p>Class-agnostic AP (mean over IoU 0.50 to 0.90 in steps of 0.05), AP50 and AP25 by the ScanNet benchmark procedure, <b>in percent</b>;
protocol <b>{html.escape(result.protocol)}</b>; n/a where no ground-truth instance counts. Overall figures pool
every scene's matches before one precision/recall curve (the benchmark's rule), so they are not the mean of
the rows. Machine-readable: <a href="evaluation.json">evaluation.json</a>.</p>
{view}
<table><thead>{header}</thead><tbody>{"".join(rows)}</tbody>
<tfoot>{row("overall", result.overall)}</tfoot></table>
{images}
</body></html>
"""
