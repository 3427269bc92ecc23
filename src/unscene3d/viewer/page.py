"""The viewer page: one self-contained HTML file (three.js and the data inlined; opens offline, no server).

Each scene's data is a JSON block the page parses when the scene is picked: positions quantised to
16 bits over the scene's bounding box (0.1 mm over 6 m), colours as bytes, labels as 16- or 32-bit
integers (label + 1, 0 = none), each base64-encoded.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from unscene3d.errors import InputError
from unscene3d.evaluation import get_protocol
from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_write_text
from unscene3d.io.benchmark import read_gt_txt, read_predictions
from unscene3d.io.ground_truth import GroundTruthFiles
from unscene3d.io.scan import load_scan
from unscene3d.pseudo.pipeline import read_pseudo_masks, segment_scene
from unscene3d.viewer.discover import Inputs, find_inputs
from unscene3d.viewer.layers import (
    DEFAULT_MAX_POINTS,
    Layer,
    PredictionLayer,
    SceneView,
    build_scene_view,
    layer_keys,
)
from unscene3d.visualize import UNLABELED_COLOR

log = logging.getLogger(__name__)

_QUANT_LEVELS = 65535
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
PROTOCOL_TEXT = {
    "scannet": "ScanNet protocol: the 18 benchmark classes count",
    "class-agnostic": "class-agnostic protocol: every instance but wall, floor and ceiling counts",
    "all": "every ground-truth instance counts",
}


@dataclass(frozen=True)
class PageSummary:
    path: Path
    size_bytes: int
    scenes: tuple[tuple[str, int, str], ...]  # (scene, number of layers, what was shown)

    def __str__(self) -> str:
        lines = [f"{len(self.scenes)} scene(s) -> {self.path} ({self.size_bytes / 1e6:.1f} MB)"]
        lines += [f"  {name}: {layers} layers, {note}" for name, layers, note in self.scenes]
        return "\n".join(lines)


def write_page(
    paths: Sequence[str | Path],
    out_html: str | Path,
    *,
    gt_dir: str | Path | None = None,
    protocol: str = "scannet",
    max_points: int = DEFAULT_MAX_POINTS,
    title: str | None = None,
    layer: str | None = None,
    scan_options: dict | None = None,
) -> PageSummary:
    """Write the viewer page of everything found under ``paths`` (scans, prediction sets, ground truth:
    :mod:`unscene3d.viewer.discover`) to ``out_html``, atomically.

    ``gt_dir``: a folder of ``<scene>.txt`` ground truth, or scan folders with their own ``instance_gt/``
    (:class:`~unscene3d.io.ground_truth.GroundTruthFiles`), used before any found under ``paths``.
    ``protocol``: which ground-truth instances count for the AP lines (``unscene3d.evaluation.PROTOCOLS``).
    ``layer``: the layer the page shows first, by name or a path suffix of it (``round_4``); by default the
    last prediction set. The page's URL fragment ``#layer=NAME`` chooses too, and wins. ``scan_options``: the
    ``--up``/``--scale``/``--kind`` of :func:`~unscene3d.io.scan.load_scan` (default: inferred).

    Raises:
        InputError: a path is missing or holds nothing to show, a scan of a prediction set cannot be
            found (:class:`~unscene3d.viewer.discover.ScanNotFound`), a file is malformed, or no scene has
            a layer named ``layer``.
    """
    get_protocol(protocol)  # a bad name fails before any work
    given_gt = GroundTruthFiles.find(gt_dir).files if gt_dir is not None else {}
    inputs = find_inputs(paths)
    views = [_scene_view(inputs, name, given_gt.get(name), protocol, max_points, scan_options or {})
             for name in inputs.scenes()]
    out_html = Path(out_html)
    for view in views:  # a scan beside the page is named relative to it, so the page can move with it
        source = Path(view.source).resolve()
        if source.is_relative_to(out_html.parent.resolve()):
            view.source = source.relative_to(out_html.parent.resolve()).as_posix()
    if layer is not None:
        _check_layer_name(layer, views)
    title = title or (views[0].name if len(views) == 1 else f"{len(views)} scenes")
    page = render_page(views, title=title, protocol=protocol, layer=layer)
    atomic_write_text(out_html, page)
    return PageSummary(
        out_html, len(page.encode("utf-8")), tuple((v.name, len(v.layers), v.note) for v in views)
    )


def _scene_view(inputs: Inputs, name: str, gt_path: Path | None, protocol: str, max_points: int,
                scan_options: dict) -> SceneView:
    given_gt = gt_path is not None
    # The scan's own ground truth (a ScanNet folder's) is shown unless --gt gives it.
    scene = load_scan(inputs.scan_for(name), load_frames=False, load_gt=not given_gt, **scan_options)
    scene.name = name  # a scan found by a pseudo-mask file's record may be named otherwise
    if given_gt:
        scene.gt = read_gt_txt(gt_path, scene.num_vertices)
    elif scene.gt is None and name in inputs.gt_files:
        scene.gt = read_gt_txt(inputs.gt_files[name], scene.num_vertices)

    predictions: list[PredictionLayer] = []
    segments = None
    seen: dict[bytes, int] = {}
    for prediction_set in inputs.prediction_sets:
        if name not in prediction_set.scenes:
            continue
        masks, _, scores = read_predictions(prediction_set.folder, name, scene.num_vertices)
        if segments is None and name in prediction_set.pseudo_scenes:
            segments = _pseudo_segments(prediction_set.folder / f"{name}.npz", scene.num_vertices)
        # The same masks in two folders (the demo's pseudo masks, say) make one layer with both names.
        key = np.packbits(masks).tobytes() + scores.tobytes()
        if key in seen:
            index = seen[key]
            earlier = predictions[index]
            predictions[index] = PredictionLayer(f"{earlier.name} = {prediction_set.name}", earlier.instances)
            continue
        seen[key] = len(predictions)
        predictions.append(PredictionLayer(prediction_set.name, Instances(masks, scores)))
    if segments is None and scene.has_faces:
        # The oversegmentation the pseudo masks and predictions vote over (mesh graph only).
        segments = segment_scene(scene).labels
    log.debug("%s: %d prediction layers", name, len(predictions))
    return build_scene_view(scene, predictions, segments=segments, protocol=protocol, max_points=max_points)


def _pseudo_segments(npz: Path, num_vertices: int) -> np.ndarray:
    labels = read_pseudo_masks(npz).segment_labels
    if len(labels) != num_vertices:
        raise InputError(npz, f"has segments for {len(labels)} vertices, the scan has {num_vertices}")
    return labels


def _check_layer_name(layer: str, views: Sequence[SceneView]) -> None:
    names = list(dict.fromkeys(item.name for view in views for item in view.layers))
    if not any(layer.lower() in layer_keys(name) for name in names):
        raise InputError(None, f"--layer {layer!r}: no scene has a layer of that name; the layers are "
                               f"{', '.join(names)}")


def render_page(views: Sequence[SceneView], *, title: str, protocol: str, layer: str | None = None) -> str:
    """The page's HTML for these scenes; ``layer``: the name of the layer to show first (see :func:`write_page`)."""
    if not views:
        raise ValueError("a page needs at least one scene")
    static = resources.files("unscene3d.viewer") / "static"
    config = {
        "unlabeled": UNLABELED_COLOR.tolist(),
        "units": f"AP / AP50 / AP25 in percent; {PROTOCOL_TEXT[protocol]}.",
        "layer": layer,
    }
    scene_blocks = "\n".join(
        f'<script type="application/json" class="scene-data" data-name="{html.escape(view.name)}">'
        f"{_json_for_html(_scene_json(view))}</script>"
        for view in views
    )
    values = {
        "TITLE": html.escape(title),
        "CSS": (static / "viewer.css").read_text(encoding="utf-8"),
        "CONFIG": _json_for_html(config),
        "SCENES": scene_blocks,
        "THREE": _inline_script(static / "three.min.js"),
        "VIEWER": _inline_script(static / "viewer.js"),
    }
    template = (static / "page.html").read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _inline_script(path) -> str:
    text = path.read_text(encoding="utf-8")
    # Inside <script>, these would end or confuse the element; the vendored files never contain them.
    if re.search(r"</script|<!--", text, re.IGNORECASE):
        raise ValueError(f"{path.name} cannot be inlined: it contains '</script' or '<!--'")
    return text


def _json_for_html(data: dict) -> str:
    # "<" escaped as \u003c keeps "</script>" and "<!--" out of the script element; still the same JSON.
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).decode()


def _scene_json(view: SceneView) -> dict:
    low = view.positions.min(axis=0) if len(view.positions) else np.zeros(3)
    extent = np.ptp(view.positions, axis=0) if len(view.positions) else np.zeros(3)
    scale = np.where(extent > 0, extent, 1.0)
    quantised = np.rint((view.positions - low) / scale * _QUANT_LEVELS).astype(np.uint16)
    return {
        "name": view.name,
        "source": view.source,
        "note": view.note,
        "origin": low.tolist(),
        "extent": (scale / _QUANT_LEVELS).tolist(),
        "positions": _b64(quantised),
        "pointSize": view.point_size,
        "layers": [_layer_json(layer) for layer in view.layers],
    }


def _layer_json(layer: Layer) -> dict:
    data: dict = {"name": layer.name, "summary": layer.summary, "kind": layer.kind, "keys": layer_keys(layer.name)}
    if layer.rgb is not None:
        data["rgb"] = _b64(layer.rgb.astype(np.uint8))
        return data
    shifted = layer.labels + 1  # 0 = no label
    dtype = np.uint16 if shifted.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    data["labels"] = _b64(shifted.astype(dtype))
    data["labelBytes"] = np.dtype(dtype).itemsize
    data["palette"] = _b64(layer.palette.astype(np.uint8))
    data["legend"] = [[entry.label, entry.text, entry.muted] for entry in layer.legend]
    return data
