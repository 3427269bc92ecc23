"""Time of ``unscene3d predict`` on one scan, model loaded once: oversegmentation + network + voting.

Runs the prediction ``--repeats`` times and prints the median wall and CPU time of each part and the
peak memory: on CPU the process's peak resident set (Linux VmHWM) above the resident set after loading
the scan and the model; on a GPU, ``torch.cuda.max_memory_allocated``. Without ``--run`` the model is a
freshly initialised one of ``--preset`` (the time hardly depends on the weights; the number of masks
kept does, a little).

    python benchmarks/predict_speed.py [SCAN] [--run RUN_DIR | --preset segment|cpu-small|paper] [--repeats 5]

The default scan is ``../shared/data/scannet/scene0000_00`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from memory import status_kib

from unscene3d.io.scan import load_scan
from unscene3d.model.sparse_backend import resolve_device
from unscene3d.predict import Predictor
from unscene3d.pseudo.pipeline import segment_scene
from unscene3d.train.selftrain import build_model, preset_config

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCAN = REPO_ROOT.parent / "shared" / "data" / "scannet" / "scene0000_00"


def _timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scan", nargs="?", type=Path, default=DEFAULT_SCAN)
    parser.add_argument("--run", type=Path, default=None, help="self-training run (default: untrained model)")
    parser.add_argument("--preset", default="segment")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-color", action="store_true", help="drop the scan's colours first")
    args = parser.parse_args()

    device = resolve_device(args.device)
    scene = load_scan(args.scan, load_frames=False)
    if args.no_color:
        scene.colors = None
    if args.run is not None:
        predictor = Predictor.load(args.run, device)
    else:
        config = preset_config(args.preset)
        predictor = Predictor(build_model(config, seed=0).to(device).eval(), config)
    baseline_kib = status_kib("VmRSS")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    segment_times, network_times, masks = [], [], 0
    for _ in range(args.repeats):
        segments, seg_wall, seg_cpu = _timed(lambda: segment_scene(scene).labels)
        prediction, net_wall, net_cpu = _timed(lambda: predictor.predict(scene, segments))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        segment_times.append((seg_wall, seg_cpu))
        network_times.append((net_wall, net_cpu))
        masks = len(prediction.scores)

    def median(pairs, index):
        return statistics.median(p[index] for p in pairs)

    total_wall = statistics.median(s[0] + n[0] for s, n in zip(segment_times, network_times))
    total_cpu = statistics.median(s[1] + n[1] for s, n in zip(segment_times, network_times))
    print(f"scan {scene.name}: {len(scene.vertices)} vertices; model {'run ' + str(args.run) if args.run else 'untrained ' + predictor.config.preset}; "
          f"device {device}, {torch.get_num_threads()} torch threads; {args.repeats} runs; {masks} masks")
    print(f"oversegmentation: median wall {median(segment_times, 0):.2f} s, CPU {median(segment_times, 1):.2f} s")
    print(f"network + voting (segment model: + segment tokens): median wall {median(network_times, 0):.2f} s, CPU {median(network_times, 1):.2f} s")
    print(f"predict total:    median wall {total_wall:.2f} s, CPU {total_cpu:.2f} s")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB")
    else:
        print(f"peak memory above scan + model: {(status_kib('VmHWM') - baseline_kib) / 1024:.0f} MiB "
              f"(process peak {status_kib('VmHWM') / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
