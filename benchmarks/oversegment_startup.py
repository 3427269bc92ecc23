"""Whole-process time of ``unscene3d oversegment`` on scene0000_00: one scan, and a batch of 10 scans.

On a mesh this size the command's own work takes under a tenth of a second; the rest of a run is
start-up (the interpreter, imports, and where the C kernels are not built, loading numba's compiled kernels
from its cache). This prints the
whole-process wall time (best and median of ``--repeats`` runs, after a warm-up run) of

- one scan: ``unscene3d oversegment SCAN -o out.segs.json``;
- a batch of 10 scans: one process given all 10 (10 processes when the code under test takes only one);

then where one run's time goes, measured in a fresh process: interpreter, imports (numpy; the rest: typer
and the pydantic it parses options with, unscene3d and what it imports), loading the kernels (first call
minus second call of ``oversegment``: milliseconds for the C kernels; for numba's, its CPU target, which
imports scipy.linalg, and the cached machine code), reading the mesh, oversegmenting, writing.

    python benchmarks/oversegment_startup.py [--scan DIR] [--repeats 5] [--baseline SRC] [--cpp SEGMENTATOR]

``--cpp SEGMENTATOR`` also times the C++ ScanNet Segmentator (a binary built from ScanNet/ScanNet
``Segmentator/``, outside this repository) on the same mesh, alternating runs with ``unscene3d oversegment``
so that both see the same load, and prints the whole-process ratio. It writes its segments beside the mesh
it is given: a link in a temporary folder.

``--baseline SRC`` times another source tree of the package as well (its ``src`` folder, run with
``PYTHONPATH``; e.g. ``git archive 580f11d src | tar -x -C /tmp/base`` then ``--baseline /tmp/base/src``)
and prints this tree's time as a ratio of it. The batch uses 10 scene folders of symbolic links to the
one mesh, in a temporary folder (the ScanNet data is not copied).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCAN = REPO_ROOT.parent / "shared" / "data" / "scannet" / "scene0000_00"
BATCH = 10

BREAKDOWN = """
import sys, time
start = time.perf_counter()
import numpy
numpy_done = time.perf_counter()
from unscene3d.cli import app
import typer._adapters  # typer >= 0.2x parses options with pydantic
import unscene3d.oversegment
from unscene3d.io.scan import load_scan
from unscene3d.io.segments import write_segs_json
from unscene3d.oversegment import oversegment
imported = time.perf_counter()
scene = load_scan(sys.argv[1], load_frames=False)
read = time.perf_counter()
oversegment(scene.vertices, scene.faces, scene.colors)
first = time.perf_counter()
segmentation = oversegment(scene.vertices, scene.faces, scene.colors)
second = time.perf_counter()
write_segs_json(sys.argv[2], segmentation.seg_ids, scene.name, segmentation.params)
written = time.perf_counter()
print(numpy_done - start, imported - numpy_done, read - imported, (first - read) - (second - first),
      second - first, written - second)
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def repeat(runs: int, command_lists: list[list[str]], env: dict[str, str]) -> list[float]:
    """Wall time of running the commands one after the other, ``runs`` times (after one warm-up)."""
    for command in command_lists:
        timed(command, env)
    return [sum(timed(command, env) for command in command_lists) for _ in range(runs)]


def takes_several_meshes(env: dict[str, str]) -> bool:
    command = [sys.executable, "-m", "unscene3d", "oversegment", "--help"]
    usage = subprocess.run(command, capture_output=True, text=True, env=env).stdout.lower()
    return any(word in usage for word in ("meshes...", "scans..."))  # its argument was MESHES, now SCANS


def batch_folder(scan: Path, work: Path) -> list[Path]:
    mesh = next(scan.glob("*_vh_clean_2.ply"))
    scans = []
    for index in range(BATCH):
        name = f"scene9{index:03d}_00"
        (work / "batch" / name).mkdir(parents=True)
        os.symlink(mesh, work / "batch" / name / f"{name}_vh_clean_2.ply")
        scans.append(work / "batch" / name)
    return scans


def measure(label: str, env: dict[str, str], scan: Path, scans: list[Path], work: Path, runs: int) -> dict:
    python = [sys.executable, "-m", "unscene3d", "oversegment"]
    single = repeat(runs, [[*python, str(scan), "-o", str(work / "one.segs.json")]], env)
    if takes_several_meshes(env):
        batch_commands = [[*python, *map(str, scans), "-o", str(work / "batch_out")]]
    else:
        batch_commands = [[*python, str(s), "-o", str(work / f"{s.name}.segs.json")] for s in scans]
    batch = repeat(runs, batch_commands, env)
    interpreter = min(repeat(runs, [[sys.executable, "-c", "pass"]], env))
    parts = subprocess.run([sys.executable, "-c", BREAKDOWN, str(scan), str(work / "part.segs.json")],
                           check=True, capture_output=True, text=True, env=env).stdout.split()
    numpy_import, other_imports, read, kernel_load, compute, write = map(float, parts)
    print(f"{label}: one scan {min(single):.3f} s (median {statistics.median(single):.3f}); "
          f"{BATCH} scans {min(batch):.3f} s (median {statistics.median(batch):.3f}; "
          f"{len(batch_commands)} process{'es' if len(batch_commands) > 1 else ''})")
    print(f"  one run: interpreter {interpreter:.3f}, imports: numpy {numpy_import:.3f}, typer/pydantic/unscene3d "
          f"{other_imports:.3f}; loading the kernels {kernel_load:.3f}, read mesh {read:.3f}, oversegment "
          f"{compute:.3f}, write {write:.3f} s")
    return {"single": min(single), "batch": min(batch)}


def versus_cpp(cpp: Path, scan: Path, work: Path, runs: int, env: dict[str, str]) -> None:
    """The C++ Segmentator and ``unscene3d oversegment`` on the same mesh, runs alternating (same load)."""
    mesh = work / "cpp" / next(scan.glob("*_vh_clean_2.ply")).name
    mesh.parent.mkdir()
    os.symlink(next(scan.glob("*_vh_clean_2.ply")).resolve(), mesh)  # the tool writes its output beside it
    ours = [sys.executable, "-m", "unscene3d", "oversegment", str(scan), "-o", str(work / "vs.segs.json")]
    theirs = [str(cpp), str(mesh), "0.01", "20"]
    timed(ours, env), timed(theirs, env)  # warm-up
    python, native = [], []
    for _ in range(runs):
        python.append(timed(ours, env))
        native.append(timed(theirs, env))
    print(f"C++ Segmentator {cpp}: one scan {min(native):.3f} s (median {statistics.median(native):.3f}); "
          f"unscene3d oversegment in the same runs {min(python):.3f} s (median {statistics.median(python):.3f})")
    print(f"unscene3d / C++: {min(python) / min(native):.2f}x (best of {runs}), "
          f"{statistics.median(python) / statistics.median(native):.2f}x (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scan", type=Path, default=DEFAULT_SCAN, help="a ScanNet scene folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="the src folder of another version of the package")
    parser.add_argument("--cpp", type=Path, help="a built C++ ScanNet Segmentator binary, timed side by side")
    args = parser.parse_args()
    if not args.scan.is_dir():
        sys.exit(f"scan not found: {args.scan} (the ScanNet scene lives in ../shared/data beside the checkout)")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        scans = batch_folder(args.scan, work)
        this = measure("this tree", dict(os.environ), args.scan, scans, work, args.repeats)
        if args.baseline is not None:
            env = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
            before = measure(f"baseline {args.baseline}", env, args.scan, scans, work, args.repeats)
            print(f"after / before: one scan {this['single'] / before['single']:.2f}, "
                  f"{BATCH} scans {this['batch'] / before['batch']:.2f}")
        if args.cpp is not None:
            versus_cpp(args.cpp.resolve(), args.scan, work, args.repeats, dict(os.environ))


if __name__ == "__main__":
    main()
