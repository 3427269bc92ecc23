"""Interrupt a small `fit` at random moments (SIGINT or SIGKILL), run it again, and check that every re-run ends
with the outputs of an uninterrupted run, repeats at most ``--checkpoint-minutes`` of training and leaves no
temporary file.

The scan is a generated room; the fit has a short schedule (``--steps`` / ``--finetune-steps``) and checkpoints
every ``--checkpoint-minutes`` (the default of `fit` is 2 minutes: a shorter period lets a short fit hold
several). Each process does what `unscene3d fit` does: it removes the temp files of killed runs, sizes its
threads (``--threads``: the same in every run, since results depend on the thread count in the last bits),
trains, and exits 130 on Ctrl-C. Trial k is seeded by ``--seed`` and k: the signal, and the moment, uniform
over the uninterrupted run's time (drawn again, earlier, when the run has already ended by then, so that every
trial interrupts a running fit).

Compared with the uninterrupted run: every file under predictions/ (masks of every round, byte for byte),
evaluation.json, and the weights of every round's last checkpoint. "Training repeated" is the time of the
steps the interrupted run had logged past the checkpoint it left (read from round_k/log.csv before the re-run).

    python benchmarks/fit_interruptions.py --trials 10
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT_SECONDS = 120  # the most training a re-run may repeat (issue 18's acceptance)
CHILD = """
import sys
from unscene3d.io.atomic import remove_stale_temps
from unscene3d.threads import use_threads
use_threads({threads})
from unscene3d.fit import FitOptions, fit
from unscene3d.train.selftrain import preset_config
remove_stale_temps({run!r})
config = preset_config("segment", steps={steps}, finetune_steps={finetune_steps},
                       checkpoint_minutes={checkpoint_minutes})
try:
    fit([{scan!r}], {run!r}, FitOptions(rounds={rounds}, config=config, page=False))
except KeyboardInterrupt:
    sys.exit(130)
"""


def child(args: argparse.Namespace, scan: Path, run: Path) -> list[str]:
    code = CHILD.format(threads=args.threads, run=str(run), steps=args.steps, finetune_steps=args.finetune_steps,
                        checkpoint_minutes=args.checkpoint_minutes, scan=str(scan), rounds=args.rounds)
    return [sys.executable, "-c", code]


def outputs(run: Path) -> dict[str, bytes]:
    """What must not depend on interruptions: predictions, evaluation, and each round's final weights."""
    from safetensors.torch import load_file

    found = {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "predictions").rglob("*")) if p.is_file()}
    if (run / "evaluation.json").is_file():
        found["evaluation.json"] = (run / "evaluation.json").read_bytes()
    for checkpoint in sorted(run.glob("round_*/checkpoint")):
        tensors = load_file(str(checkpoint / "model.safetensors"))
        found[str(checkpoint.parent.name) + "/weights"] = b"".join(
            name.encode() + tensors[name].numpy().tobytes() for name in sorted(tensors))
    return found


def leftovers(run: Path) -> list[str]:
    """Temp files of killed writers and checkpoint folders a killed save left incomplete."""
    temps = [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    incomplete = [p for p in run.glob("round_*/checkpoints/step_*") if not (p / "state.json").is_file()]
    return [str(p.relative_to(run)) for p in temps + incomplete]


def repeated_seconds(run: Path) -> float:
    """Training time the next run repeats: the logged steps of each unfinished round past its latest checkpoint."""
    from unscene3d.model.checkpoint import latest_checkpoint

    total = 0.0
    for log in run.glob("round_*/log.csv"):
        if (log.parent / "done.json").is_file():
            continue
        checkpoint = latest_checkpoint(log.parent)
        saved = 0 if checkpoint is None else json.loads((checkpoint / "state.json").read_text())["step"]
        with open(log) as handle:
            total += sum(float(row["step_seconds"]) for row in csv.DictReader(handle) if int(row["step"]) > saved)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--finetune-steps", type=int, default=20)
    parser.add_argument("--checkpoint-minutes", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from unscene3d.io.ply import write_ply
    from unscene3d.synthetic import make_synthetic_scene

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scene = make_synthetic_scene(1, vertex_spacing=0.06)
        scan = tmp / "room.ply"
        write_ply(scan, scene.vertices, scene.faces, scene.colors)
        started = time.perf_counter()
        subprocess.run(child(args, scan, tmp / "reference"), check=True, capture_output=True)
        reference_seconds = time.perf_counter() - started
        reference = outputs(tmp / "reference")
        print(f"uninterrupted fit: {reference_seconds:.1f} s, {len(reference)} outputs compared", flush=True)
        trials = []
        for trial in range(args.trials):
            rng = random.Random(f"{args.seed}-{trial}")
            kind = rng.choice(["SIGINT", "SIGKILL"])
            run = tmp / f"trial{trial}"
            upper = reference_seconds
            while True:  # a run that ends before its moment interrupts nothing: draw again, earlier
                moment = rng.uniform(0.5, upper)
                process = subprocess.Popen(child(args, scan, run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(moment)
                if process.poll() is None:
                    break
                process.communicate()
                shutil.rmtree(run)
                upper = moment
            process.send_signal(getattr(signal, kind))
            _, stderr = process.communicate()
            repeated = repeated_seconds(run)
            finished = subprocess.run(child(args, scan, run), capture_output=True, text=True)
            same = finished.returncode == 0 and outputs(run) == reference
            row = {"trial": trial, "signal": kind, "at_seconds": round(moment, 1), "exit": process.returncode,
                   "rerun_exit": finished.returncode, "identical": same,
                   "training_repeated_seconds": round(repeated, 1), "leftovers": leftovers(run)}
            trials.append(row)
            print(json.dumps(row), flush=True)
        worst = max(row["training_repeated_seconds"] for row in trials)
        ok = all(row["identical"] and not row["leftovers"] for row in trials) and worst <= LIMIT_SECONDS
        summary = {"reference_seconds": round(reference_seconds, 1), "trials": trials,
                   "identical": sum(row["identical"] for row in trials), "max_training_repeated_seconds": worst,
                   "checkpoint_minutes": args.checkpoint_minutes, "passed": ok}
        print(f"{summary['identical']}/{len(trials)} re-runs identical to the uninterrupted run; at most "
              f"{worst:.1f} s of training repeated (checkpoints every {args.checkpoint_minutes * 60:.0f} s); "
              f"leftover files: {sum(len(row['leftovers']) for row in trials)}; {'PASSED' if ok else 'FAILED'}")
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
