"""An offline, self-contained HTML page to look at scans, segments, ground truth and predictions in 3D.

``write_page(paths, out_html)`` is what ``unscene3d view`` runs; the demo and ``evaluate --report`` call it
too, and so can any stage that writes results (a ``fit`` run folder: ``write_page([run_dir], run_dir /
"index.html")``).
"""

from unscene3d.viewer.discover import Inputs, PredictionSet, ScanNotFound, find_inputs
from unscene3d.viewer.layers import DEFAULT_MAX_POINTS
from unscene3d.viewer.page import PageSummary, render_page, write_page

__all__ = [
    "DEFAULT_MAX_POINTS",
    "Inputs",
    "PageSummary",
    "PredictionSet",
    "ScanNotFound",
    "find_inputs",
    "render_page",
    "write_page",
]
