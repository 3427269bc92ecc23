"""Back-projection check on real data: project the colour frames of scene0000_00 onto its mesh.

The image colours themselves serve as a 3-channel feature map; the averaged projected colour of each
vertex is compared with the mesh's own vertex colour (Pearson correlation over all seen vertices
and channels), with and without occlusion handling (z-buffer depth of the mesh: the scan has no
depth maps). Without occlusion, surfaces hidden behind others take the colour of what hides them.

    python benchmarks/projection_check.py [SCENE_FOLDER]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from unscene3d.features.features2d import backproject_features, image_feature_map
from unscene3d.io.scan import load_scan

DEFAULT_SCENE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scannet" / "scene0000_00"


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SCENE
    scene = load_scan(folder)
    names = ", ".join(frame.name for frame in scene.frames)
    print(f"{scene.name}: {scene.num_vertices} vertices, {len(scene.frames)} frames ({names})")
    mesh_colors = scene.colors.astype(np.float64)
    for occlusion in (False, True):
        start = time.perf_counter()
        projected, counts = backproject_features(scene, image_feature_map, occlusion=occlusion)
        seen = counts > 0
        corr = np.corrcoef(projected[seen].ravel(), mesh_colors[seen].ravel())[0, 1]
        mean_abs = np.abs(projected[seen] - mesh_colors[seen]).mean()
        print(
            f"occlusion={'on ' if occlusion else 'off'}: correlation {corr:.3f}, mean |diff| {mean_abs:.1f}/255, "
            f"{seen.sum()} vertices seen, {time.perf_counter() - start:.1f}s"
        )


if __name__ == "__main__":
    main()
