"""`fit` on an idle machine and beside a synthetic load of busy processes: seconds per training step and wall
time of each, and the ratio loaded / idle.

Each run is a fresh process (thread pools are sized when a process starts) that does what `unscene3d fit`
does: size its threads (``--threads``, default: the free cores, :mod:`unscene3d.threads`), then pseudo masks,
self-training rounds and every round's masks, with a schedule shortened by ``--steps`` /
``--finetune-steps``. The load is ``--load`` Python processes spinning on the CPU for the whole run.

    python benchmarks/fit_under_load.py ../shared/data/scannet/scene0000_00 --rounds 2 --steps 60
    python benchmarks/fit_under_load.py SCAN --threads 2 --omp-wait active   # the old behaviour, for comparison
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
from unscene3d.threads import use_threads
threads = use_threads({threads})
from unscene3d.fit import FitOptions, fit
from unscene3d.train.selftrain import preset_config
config = preset_config("segment", steps={steps}, finetune_steps={finetune_steps})
started = time.perf_counter()
fit([{scan!r}], {run!r}, FitOptions(rounds={rounds}, config=config, page=False))
print(json.dumps({{"threads": threads, "seconds": time.perf_counter() - started}}))
"""


def run_fit(args: argparse.Namespace, load: int, run: Path) -> dict:
    """One fit in a fresh process beside ``load`` busy processes: wall time, threads and step times."""
    env = dict(os.environ)
    if args.omp_wait == "active":  # what an unset OMP_WAIT_POLICY gave before: threads spin while they wait
        env["OMP_WAIT_POLICY"] = "ACTIVE"
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        code = CHILD.format(threads=args.threads, steps=args.steps, finetune_steps=args.finetune_steps,
                            scan=str(args.scan), run=str(run), rounds=args.rounds)
        load_before = os.getloadavg()[0]
        finished = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    steps = []
    for log in sorted(run.glob("round_*/log.csv")):
        with open(log) as handle:
            steps += [float(row["step_seconds"]) for row in csv.DictReader(handle)]
    return {"load": load, "load_average_before": round(load_before, 2), "threads": result["threads"],
            "fit_seconds": round(result["seconds"], 1), "steps": len(steps),
            "seconds_per_step": round(statistics.mean(steps), 3), "median_step": round(statistics.median(steps), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scan", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60, help="Round-1 steps (the segment preset trains 1,000).")
    parser.add_argument("--finetune-steps", type=int, default=30, help="Steps of each later round (preset: 300).")
    parser.add_argument("--threads", type=int, default=None, help="Default: the free cores, as `fit` picks them.")
    parser.add_argument("--load", type=int, default=2, help="Busy processes beside the loaded run.")
    parser.add_argument("--omp-wait", choices=("passive", "active"), default="passive")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, load in enumerate((0, args.load)):
            rows.append(run_fit(args, load, Path(tmp) / f"run{index}"))
            print(json.dumps(rows[-1]), flush=True)
            time.sleep(5)  # let the busy processes' share of the load average decay a little
    idle, loaded = rows
    summary = {"rows": rows, "ratio_loaded_idle_fit": round(loaded["fit_seconds"] / idle["fit_seconds"], 2),
               "ratio_loaded_idle_step": round(loaded["seconds_per_step"] / idle["seconds_per_step"], 2),
               "omp_wait": args.omp_wait, "cores": len(os.sched_getaffinity(0))}
    print(f"fit: idle {idle['fit_seconds']} s ({idle['seconds_per_step']} s/step, {idle['threads']} thread(s)), "
          f"beside {args.load} busy processes {loaded['fit_seconds']} s ({loaded['seconds_per_step']} s/step, "
          f"{loaded['threads']} thread(s)): ratio {summary['ratio_loaded_idle_fit']} (per step "
          f"{summary['ratio_loaded_idle_step']})")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
