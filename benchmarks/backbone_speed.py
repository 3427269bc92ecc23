"""Speed and memory of the sparse Res16UNet backbone on a real ScanNet scan.

Voxelises the scan at 2 cm, then times the forward pass (eval, no gradients) and forward + backward
(train mode, a scalar loss on the head) and reports the peak memory of each. Each phase runs in its own
process, so on CPU its peak is the process's peak resident set (Linux VmHWM) above the resident set just
before the first pass (scan, voxels and weights already loaded); on a GPU, ``max_memory_allocated``.

    python benchmarks/backbone_speed.py [SCAN] [--preset paper|cpu-small] [--repeats 3] [--device cpu]

The default scan is ``../shared/data/scannet/scene0000_00`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from memory import status_kib

from unscene3d.io.scan import load_scan
from unscene3d.model.backbone import build_backbone, sparse_input
from unscene3d.model.sparse_backend import resolve_device
from unscene3d.train.pretrain import preset_config
from unscene3d.voxelize import scene_point_features, voxelize

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCAN = REPO_ROOT.parent / "shared" / "data" / "scannet" / "scene0000_00"


def run_phase(args: argparse.Namespace) -> dict:
    """Time one phase (``forward`` or ``train``) in this process; returns its figures."""
    device = resolve_device(args.device)
    config = preset_config(args.preset).backbone
    scene = load_scan(args.scan, load_frames=False)
    start = time.perf_counter()
    voxels = voxelize(scene.vertices, scene_point_features(scene, config.input_channels), config.voxel_size)
    voxelize_seconds = time.perf_counter() - start
    batch = sparse_input([voxels], device)
    model = build_backbone(config, seed=0).to(device)

    def forward() -> None:
        model.eval()
        with torch.no_grad():
            model(batch.tensor)

    def forward_backward() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        model(batch.tensor).output.features.square().mean().backward()

    run = forward if args.phase == "forward" else forward_backward
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    baseline_kib = status_kib("VmRSS")
    run()  # warm-up: spconv builds its index tables and kernels on first use
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mib = (status_kib("VmHWM") - baseline_kib) / 1024
    return {
        "scene": scene.name, "vertices": int(scene.vertices.shape[0]), "voxels": voxels.num_voxels,
        "voxel_size": config.voxel_size, "voxelize_s": voxelize_seconds, "device": str(device),
        "threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in model.parameters()),
        "median_s": statistics.median(times), "peak_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scan", nargs="?", type=Path, default=DEFAULT_SCAN)
    parser.add_argument("--preset", default="paper", choices=["paper", "cpu-small"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--phase", choices=["forward", "train"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args)))
        return
    results = {}
    for phase in ("forward", "train"):
        command = [sys.executable, __file__, str(args.scan), "--preset", args.preset, "--repeats", str(args.repeats),
                   "--phase", phase] + (["--device", args.device] if args.device else [])
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[phase] = json.loads(output.strip().splitlines()[-1])
    info = results["forward"]
    memory = "GPU max allocated" if info["device"].startswith("cuda") else "peak RSS above start"
    print(f"scan {info['scene']}: {info['vertices']} vertices -> {info['voxels']} voxels at "
          f"{info['voxel_size'] * 100:.0f} cm (voxelise {info['voxelize_s']:.3f} s)")
    print(f"backbone preset {args.preset}: {info['parameters'] / 1e6:.2f} M parameters, device {info['device']}, "
          f"torch threads {info['threads']}, median of {args.repeats} after a warm-up")
    print(f"forward            {results['forward']['median_s']:.3f} s   {memory} {results['forward']['peak_mib']:.0f} MiB")
    print(f"forward + backward {results['train']['median_s']:.3f} s   {memory} {results['train']['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
