"""Time and memory of ``unscene3d predict``, model loaded once.

**The model of objects** (the default, what ``unscene3d predict SCANS -o OUT`` runs): the shipped ranker on
generated rooms (meshes, and the same rooms as point clouds of their vertices) at several vertex spacings and
on the real scans in ``../shared``. Per scan: the best of ``--repeats`` wall times of
``RankerPredictor.predict`` (loaded scan to masks), the CPU time of that run, seconds per 100,000 points, and
the peak memory of one prediction (in a fresh process with the scan and the model loaded and a first
prediction made on a corner of the scan, the peak resident set above the resident set before). With ``--baseline-src DIR`` (another checkout's ``src``, e.g. the main branch's) the same
measurements run alternately in child processes on that code and on this one, ``--rounds`` times, and the
report gives old / new per scan; each child also writes every scan's segments, candidate masks and scores,
and the report says whether the two codes' are bit-identical.

    python benchmarks/predict_speed.py [--baseline-src ../main/src] [--repeats 3] [--rounds 2] [--spacings 0.05 0.035 0.025]

**A self-trained model** (``--run RUN_DIR``, or ``--preset segment|cpu-small|paper`` for an untrained one):
oversegmentation + network + voting on one scan (``--scan``, default scene0000_00), the median of
``--repeats`` runs; on a GPU the peak is ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from memory import status_kib

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL = REPO_ROOT.parent / "shared" / "data" / "scannet"
REAL_SCANS = ("scene0000_00", "scene0011_00")
GENERATED_SEED = 950_001  # a room no ranker trained on (training seeds 100000+, validation 900000+)


def _timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def _generated_scenes(spacings: list[float], folder: Path) -> list[Path]:
    """One generated room per spacing, as a mesh and as the point cloud of its vertices, saved as npz."""
    from unscene3d.synthetic import make_synthetic_scene

    paths = []
    for spacing in spacings:
        scene = make_synthetic_scene(GENERATED_SEED, vertex_spacing=spacing)
        for kind, faces in (("mesh", scene.faces), ("cloud", np.zeros((0, 3), np.int64))):
            path = folder / f"generated_{kind}_{spacing:g}.npz"
            np.savez(path, vertices=scene.vertices, faces=faces, colors=scene.colors)
            paths.append(path)
    return paths


def _load(path: Path):
    from unscene3d.io.scan import load_scan
    from unscene3d.scene import Scene

    if path.suffix == ".npz":
        with np.load(path) as data:
            return Scene(path.stem, data["vertices"], data["faces"], data["colors"])
    return load_scan(path, load_frames=False)


def _stages(scene, ranker) -> dict[str, np.ndarray]:
    """What the results are made of, through the public stages ``predict`` runs."""
    from unscene3d.proposals.ranker import rank_candidates
    from unscene3d.pseudo.pipeline import segment_scene
    from unscene3d.segments import describe_segments

    segmentation = segment_scene(scene)
    segments = describe_segments(scene, segmentation.labels, segmentation.num_segments)
    ranked = rank_candidates(scene, segments, ranker)
    return {"segments": segmentation.labels, "candidates": np.packbits(ranked.candidates.masks, axis=1),
            "scores": ranked.scores, "masks": np.packbits(ranked.instances.masks, axis=1),
            "mask_scores": ranked.instances.scores, "structure": segments.structure.kinds}


def worker(scans: list[Path], repeats: int, dump: Path) -> None:
    """Measure every scan on the code this process imports; print one JSON line per scan."""
    import logging

    from unscene3d.predict import RankerPredictor

    logging.disable(logging.WARNING)
    predictor = RankerPredictor()
    dump.mkdir(parents=True, exist_ok=True)
    for path in scans:
        predictor.predict(_load(path))  # first call: numba's cached kernels load, scipy imports
        runs = []
        for _ in range(repeats):  # a freshly loaded scan each time: nothing computed for it before
            scene = _load(path)
            runs.append(_timed(lambda scene=scene: predictor.predict(scene))[1:])
        wall, cpu = min(runs)
        scene = _load(path)
        stages = _stages(scene, predictor.ranker)
        np.savez(dump / f"{scene.name}.npz", **stages)
        print(json.dumps({"scan": scene.name, "points": len(scene.vertices), "wall": wall, "cpu": cpu,
                          "masks": len(stages["mask_scores"])}), flush=True)


def memory_worker(scan: Path) -> None:
    """The peak resident memory one prediction adds (MiB) in a fresh process: scan and model loaded, and
    everything a first call loads (numba's kernels, scipy's modules) loaded by a prediction on a corner of the
    scan first, Linux's peak (VmHWM) then reset; freed memory stays resident, so the corner is kept small."""
    import logging

    from unscene3d.predict import RankerPredictor
    from unscene3d.scene import Scene

    logging.disable(logging.WARNING)
    predictor, scene = RankerPredictor(), _load(scan)
    corner = min(3000, scene.num_vertices)
    faces = scene.faces[(scene.faces < corner).all(axis=1)]
    colors = None if scene.colors is None else scene.colors[:corner]
    predictor.predict(Scene("corner", scene.vertices[:corner], faces, colors))
    Path("/proc/self/clear_refs").write_text("5")
    before = status_kib("VmRSS")
    predictor.predict(scene)
    print(json.dumps({"scan": scene.name, "peak_mib": (status_kib("VmHWM") - before) / 1024}), flush=True)


def _child(src: Path, *arguments: object) -> list[dict]:
    """This script in a child process importing the package from ``src``; its JSON lines."""
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    done = subprocess.run([sys.executable, __file__, *map(str, arguments)], env=env, check=True,
                          capture_output=True, text=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _identical(old: Path, new: Path) -> str:
    with np.load(old) as a, np.load(new) as b:
        differ = [key for key in a.files if key not in b.files or a[key].shape != b[key].shape
                  or not np.array_equal(a[key], b[key])]
    return "yes" if not differ else "NO: " + ", ".join(differ)


def compare(args: argparse.Namespace) -> None:
    """Old (``--baseline-src``) against new (this checkout) or this checkout alone; prints a markdown table."""
    current = REPO_ROOT / "src"
    codes = {"new": current} if args.baseline_src is None else {"old": args.baseline_src, "new": current}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        scans = _generated_scenes(args.spacings, folder) + [REAL / name for name in REAL_SCANS
                                                            if (REAL / name).exists()]
        runs: dict[str, dict[str, list[dict]]] = {name: {} for name in codes}
        for round_ in range(args.rounds):
            for name, src in codes.items():
                for row in _child(src, "--worker", "--repeats", args.repeats, "--dump", folder / name, *scans):
                    runs[name].setdefault(row["scan"], []).append(row)
                print(f"round {round_ + 1}/{args.rounds}: {name} code done", file=sys.stderr, flush=True)
        best = {name: {scan: min(rows, key=lambda row: row["wall"]) for scan, rows in per_scan.items()}
                for name, per_scan in runs.items()}
        for name, src in codes.items():
            for scan in scans:
                (row,) = _child(src, "--memory", scan)
                best[name][row["scan"]]["peak_mib"] = row["peak_mib"]
        print(f"best of {args.rounds * args.repeats} runs per scan (wall s, CPU s of that run); peak: resident "
              f"memory one prediction adds (fresh process, after one on a corner of the scan); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        columns = ["scan", "points"] + [f"{n} {what}" for n in codes for what in ("s", "s/100k", "CPU s", "peak MiB")]
        columns += ["old / new", "identical"] if len(codes) == 2 else []
        print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
        for scan, row in best["new"].items():
            cells = [scan, f"{row['points']:,}"]
            for name in codes:
                r = best[name][scan]
                cells += [f"{r['wall']:.2f}", f"{r['wall'] / r['points'] * 1e5:.2f}", f"{r['cpu']:.2f}",
                          f"{r['peak_mib']:.0f}"]
            if len(codes) == 2:
                cells += [f"{best['old'][scan]['wall'] / row['wall']:.2f}x",
                          _identical(folder / "old" / f"{scan}.npz", folder / "new" / f"{scan}.npz")]
            print("| " + " | ".join(cells) + " |")


def self_trained(args: argparse.Namespace) -> None:
    """A self-trained run's model (or an untrained preset) on one scan."""
    import torch

    from unscene3d.io.scan import load_scan
    from unscene3d.model.sparse_backend import resolve_device
    from unscene3d.predict import Predictor
    from unscene3d.pseudo.pipeline import segment_scene
    from unscene3d.train.selftrain import build_model, preset_config

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-src", type=Path, default=None, help="another checkout's src to compare with")
    parser.add_argument("--spacings", type=float, nargs="*", default=[0.05, 0.035, 0.025],
                        help="vertex spacings (m) of the generated rooms")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of old and new code")
    parser.add_argument("--run", type=Path, default=None, help="a self-trained run's model instead")
    parser.add_argument("--preset", default=None, help="an untrained self-training preset's model instead")
    parser.add_argument("--scan", type=Path, default=REAL / "scene0000_00", help="the scan of --run / --preset")
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-color", action="store_true", help="--run / --preset: drop the scan's colours first")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("scans", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.scans, args.repeats, args.dump)
    elif args.memory:
        memory_worker(args.scans[0])
    elif args.run is not None or args.preset is not None:
        self_trained(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
