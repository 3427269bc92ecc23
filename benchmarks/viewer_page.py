"""Size and time to first render of the viewer page for a real ScanNet scene, in headless Chromium.

The page of scene0000_00 with 4 layers (input colours, segments, ground truth, the Felzenszwalb baseline's
instances), opened --loads times, each in a fresh browser; time to first render is the page's own
performance.now() at its first drawn frame (from navigation start: parsing, decoding and the first
WebGL draw on SwiftShader). With --plotly, the same 4 layers as a plotly.js page (plotly's bundled JS,
one Scatter3d trace per layer, colours per point) are measured the same way, the alternative the viewer
was measured against (needs `pip install plotly`).

    python benchmarks/viewer_page.py [--data ../shared/data] [--loads 5] [--plotly]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from unscene3d.baselines import felzenszwalb_instances
from unscene3d.io.benchmark import export_predictions, read_predictions
from unscene3d.io.scan import load_scan
from unscene3d.pseudo.pipeline import segment_scene
from unscene3d.viewer import write_page
from unscene3d.viewer.headless import find_chromium, open_page
from unscene3d.visualize import label_colors, masks_to_labels

REPO_ROOT = Path(__file__).resolve().parents[1]


def first_render_times(page: Path, loads: int) -> list[float]:
    times = []
    for _ in range(loads):
        with open_page(page) as opened:
            if opened.errors:
                raise RuntimeError(f"{page}: {opened.errors}")
            times.append(opened.first_render_ms)
    return times


def plotly_page(scan_dir: Path, pred_dir: Path, out: Path) -> None:
    import plotly.graph_objects as go

    scene = load_scan(scan_dir, load_frames=False, load_gt=True)
    masks, _, scores = read_predictions(pred_dir, scene.name, scene.num_vertices)
    gt_ids = np.unique(scene.gt, return_inverse=True)[1].reshape(-1)
    layers = {
        "input colours": scene.colors,
        "segments": label_colors(segment_scene(scene).labels),
        "ground truth": label_colors(np.where(scene.gt > 0, gt_ids, -1)),
        "felzenszwalb": label_colors(masks_to_labels(masks, scores)),
    }
    xyz = scene.vertices.astype(np.float32)
    figure = go.Figure()
    for index, (name, rgb) in enumerate(layers.items()):
        colours = np.array([f"rgb({r},{g},{b})" for r, g, b in rgb.tolist()])
        figure.add_trace(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", name=name,
                                      marker={"size": 1.5, "color": colours}, visible=index == 0))
    buttons = [{"label": name, "method": "update", "args": [{"visible": [i == j for j in range(len(layers))]}]}
               for i, name in enumerate(layers)]
    figure.update_layout(updatemenus=[{"buttons": buttons}], scene={"aspectmode": "data"})
    figure.write_html(out, include_plotlyjs=True, full_html=True,
                      post_script="requestAnimationFrame(() => { window.viewerFirstRenderMs = performance.now(); });")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--scene", default="scene0000_00")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--plotly", action="store_true", help="Also measure the plotly.js page of the same layers.")
    args = parser.parse_args()
    executable, reason = find_chromium()
    if executable is None:
        raise SystemExit(f"no headless browser: {reason}")

    scan_dir = args.data / "scannet" / args.scene
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scene = load_scan(scan_dir, load_frames=False)
        found = felzenszwalb_instances(scene)
        pred_dir = tmp / "felzenszwalb"
        export_predictions(pred_dir, scene.name, found.masks, found.scores)

        start = time.perf_counter()
        summary = write_page([scan_dir, pred_dir], tmp / "page.html")
        build = time.perf_counter() - start
        times = first_render_times(summary.path, args.loads)
        print(f"viewer (three.js): {summary.scenes[0][1]} layers, {summary.scenes[0][2]}; page "
              f"{summary.size_bytes / 1e6:.2f} MB, written in {build:.2f} s; first render median "
              f"{statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f}, {args.loads} loads)")

        if args.plotly:
            plotly_path = tmp / "plotly.html"
            start = time.perf_counter()
            plotly_page(scan_dir, pred_dir, plotly_path)
            build = time.perf_counter() - start
            times = first_render_times(plotly_path, args.loads)
            print(f"plotly.js: 4 layers; page {plotly_path.stat().st_size / 1e6:.2f} MB, written in {build:.2f} s; "
                  f"first render median {statistics.median(times):.0f} ms (min {min(times):.0f}, "
                  f"max {max(times):.0f}, {args.loads} loads)")


if __name__ == "__main__":
    main()
