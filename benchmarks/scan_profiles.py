"""Do the defaults hold from a tabletop frame to a whole room, whatever the file's units, axes and colour?

Every figure is `unscene3d evaluate`'s AP / AP50 / AP25 (percent, ScanNet protocol) of a command run with **no
flags** on a scan as it is written (issue 17):

- the four mOSD Kinect frames (tabletop; ground truth from `unscene3d export-gt`, the table void):
  `baseline felzenszwalb` and `pseudo-masks`;
- scene0000_00 written as PLY (the release mesh), OBJ, GLB (turned y up, as glTF specifies), PLY in
  millimetres, PLY turned y up, and PLY without colours: `pseudo-masks` (the model of objects), and the
  normalized-cut source (`--source ncut`) on the PLY and the OBJ (the PLY / OBJ question of the issue);
- scene0011_00 (a Pointcept point cloud): `pseudo-masks` and `baseline felzenszwalb`;
- scene0000_00 resampled as a scanner would see it: points drawn uniformly over the mesh's surface (150,000 exact,
  150,000 with 5 mm of noise, 400,000 with 3 mm), each with the colour and label of the nearest corner of its
  triangle, written as a PLY cloud: `pseudo-masks` and `baseline felzenszwalb` (a density unlike any vertex set).

Each scan's inferred profile (the INFO line of `load_scan`) is printed with its row. To compare with an older
checkout, run this file with that checkout's sources first on PYTHONPATH (the commands take no new flags).

    python benchmarks/scan_profiles.py [--data ../shared/data] [--work DIR] [--only mosd|rooms]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
FRAMES = ("learn0", "learn17", "learn25", "learn33")
# glTF's y up: the z-up room's (x, y, z) written as (x, z, -y).
Z_TO_Y_UP = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])


def unscene3d(*args: str | Path) -> str:
    """Run the command line as a user would; its stderr (the log) is returned for the profile line."""
    done = subprocess.run([sys.executable, "-m", "unscene3d", *map(str, args)], capture_output=True, text=True,
                          env=os.environ.copy())
    if done.returncode != 0:
        raise SystemExit(f"unscene3d {' '.join(map(str, args))} failed:\n{done.stderr[-2000:]}")
    return done.stderr


def evaluate(predictions: Path, gt: Path) -> dict[str, float]:
    out = predictions / "evaluation.json"
    unscene3d("evaluate", predictions, "--gt", gt, "--json", out, "--predicted-only")
    return json.loads(out.read_text())


def profile_line(log: str) -> str:
    lines = [line for line in log.splitlines() if "unscene3d.io.scan: " in line and "; units " in line]
    # the message after the logger's name and the scan's path
    return lines[0].split("unscene3d.io.scan: ", 1)[1].split(": ", 1)[1] if lines else "(no profile line)"


def row(label: str, figures: dict[str, float]) -> str:
    return f"{label:52s} {figures['AP']:5.1f} / {figures['AP50']:5.1f} / {figures['AP25']:5.1f}"


def mosd(data: Path, work: Path) -> None:
    print("mOSD frames, no flags: AP / AP50 / AP25")
    gt = work / "mosd_gt"
    frames = [data / "mosd" / f"{name}.pcd" for name in FRAMES]
    unscene3d("export-gt", *frames, "-o", gt)
    for frame in frames:
        for command in (("baseline", "felzenszwalb"), ("pseudo-masks",)):
            out = work / f"mosd_{frame.stem}_{command[-1]}"
            log = unscene3d(*command, frame, "-o", out, "--force")
            print(row(f"{frame.stem}: {' '.join(command)}", evaluate(out, gt)))
        print(f"    profile: {profile_line(log)}")


def write_variants(data: Path, folder: Path) -> dict[str, Path]:
    """scene0000_00 as each file variant, one folder per variant (the scene keeps its name)."""
    import trimesh

    from unscene3d.io.ply import read_ply, write_ply

    source = data / "scannet" / "scene0000_00" / "scene0000_00_vh_clean_2.ply"
    mesh = read_ply(source)
    turned = mesh.vertices @ Z_TO_Y_UP.T
    variants = {name: folder / name / f"scene0000_00.{suffix}" for name, suffix in (
        ("PLY", "ply"), ("OBJ", "obj"), ("GLB (y up)", "glb"), ("PLY in millimetres", "ply"),
        ("PLY turned y up", "ply"), ("PLY without colour", "ply"))}
    for path in variants.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    variants["PLY"].write_bytes(source.read_bytes())
    trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_colors=mesh.colors, process=False).export(variants["OBJ"])
    trimesh.Trimesh(turned, mesh.faces, vertex_colors=mesh.colors, process=False).export(variants["GLB (y up)"])
    write_ply(variants["PLY in millimetres"], mesh.vertices * 1000.0, mesh.faces, mesh.colors)
    write_ply(variants["PLY turned y up"], turned, mesh.faces, mesh.colors)
    write_ply(variants["PLY without colour"], mesh.vertices, mesh.faces, None)
    return variants


SAMPLED_CLOUDS = ((150_000, 0.0), (150_000, 0.005), (400_000, 0.003))  # (points, noise in metres)


def write_sampled_clouds(data: Path, folder: Path) -> dict[str, tuple[Path, Path]]:
    """scene0000_00's surface sampled uniformly (module docstring): each cloud's PLY and ground-truth folder."""
    from unscene3d.io.benchmark import write_gt_txt
    from unscene3d.io.ply import write_ply
    from unscene3d.io.scan import load_scan

    mesh = load_scan(data / "scannet" / "scene0000_00", load_gt=True, load_frames=False)
    corners = mesh.vertices[mesh.faces]
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    clouds = {}
    for count, noise in SAMPLED_CLOUDS:
        rng = np.random.default_rng(0)
        face = rng.choice(len(mesh.faces), count, p=area / area.sum())
        a, b = rng.random(count), rng.random(count)
        outside = a + b > 1  # fold the unit square onto the triangle
        a[outside], b[outside] = 1 - a[outside], 1 - b[outside]
        weights = np.stack([1 - a - b, a, b], axis=1)
        points = np.einsum("nk,nkd->nd", weights, corners[face]) + rng.normal(0.0, noise, (count, 3))
        nearest = mesh.faces[face, np.argmax(weights, axis=1)]
        name = f"{count // 1000}k points, {noise * 1000:.0f} mm noise"
        path = folder / name.replace(" ", "_").replace(",", "") / "scene0000_00.ply"
        (path.parent / "gt").mkdir(parents=True, exist_ok=True)
        write_ply(path, points, None, mesh.colors[nearest])
        write_gt_txt(path.parent / "gt" / "scene0000_00.txt", mesh.gt[nearest])
        clouds[name] = (path, path.parent / "gt")
    return clouds


def rooms(data: Path, work: Path) -> None:
    print("scene0000_00 as written, no flags: AP / AP50 / AP25")
    gt = data / "scannet" / "scene0000_00" / "instance_gt"
    variants = write_variants(data, work / "scene0000_variants")
    for name, path in variants.items():
        out = work / f"scene0000_{name.replace(' ', '_').replace('(', '').replace(')', '')}"
        log = unscene3d("pseudo-masks", path, "-o", out, "--force")
        print(row(f"{name}: pseudo-masks", evaluate(out, gt)))
        print(f"    profile: {profile_line(log)}")
    for name in ("PLY", "OBJ"):
        out = work / f"scene0000_{name}_ncut"
        unscene3d("pseudo-masks", variants[name], "-o", out, "--source", "ncut", "--force")
        print(row(f"{name}: pseudo-masks --source ncut", evaluate(out, gt)))

    print("scene0011_00 (point cloud), no flags: AP / AP50 / AP25")
    scan = data / "scannet" / "scene0011_00"
    for command in (("pseudo-masks",), ("baseline", "felzenszwalb")):
        out = work / f"scene0011_{command[-1]}"
        log = unscene3d(*command, scan, "-o", out, "--force")
        print(row(f"scene0011_00: {' '.join(command)}", evaluate(out, scan / "instance_gt")))
    print(f"    profile: {profile_line(log)}")

    print("scene0000_00's surface sampled as a cloud, no flags: AP / AP50 / AP25")
    for name, (path, gt) in write_sampled_clouds(data, work / "scene0000_sampled").items():
        for command in (("pseudo-masks",), ("baseline", "felzenszwalb")):
            out = path.parent / command[-1]
            log = unscene3d(*command, path, "-o", out, "--force")
            print(row(f"{name}: {' '.join(command)}", evaluate(out, gt)))
        print(f"    profile: {profile_line(log)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=None, help="Folder for the variants and outputs (default: a "
                        "temporary one).")
    parser.add_argument("--only", choices=("mosd", "rooms"), default=None)
    args = parser.parse_args()
    if not (args.data / "mosd").is_dir() or not (args.data / "scannet").is_dir():
        raise SystemExit(f"no mOSD / ScanNet data under {args.data} (see ../shared/data/README.md)")
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "mosd"):
            mosd(args.data, work)
        if args.only in (None, "rooms"):
            rooms(args.data, work)


if __name__ == "__main__":
    main()
