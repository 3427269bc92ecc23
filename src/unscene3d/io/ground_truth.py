"""Where each scene's ground truth is, for ``evaluate --gt`` and ``view --gt``.

``--gt`` names a folder of benchmark files ``<scene>.txt`` (what ``export-gt`` and ``synthetic`` write), or
scans that carry their own ground truth: a ScanNet or Pointcept scene folder, or a folder of them, each with
``instance_gt/<scene>.txt``. A scan folder without that file (a ScanNet folder with only the release's
annotation files, say) is named in the error, with the command that writes its ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from unscene3d.errors import InputError, display_path
from unscene3d.io.datasets import is_pointcept_folder
from unscene3d.io.scannet import MESH_SUFFIX, find_scannet_mesh

GT_SUBFOLDER = "instance_gt"


@dataclass(frozen=True)
class GroundTruthFiles:
    """The ground-truth file of each scene under ``root`` (``files``), and the scan folders under it that
    have none (``missing``: scene -> scan folder)."""

    root: Path
    files: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def find(cls, root: str | Path) -> GroundTruthFiles:
        """Raises InputError when ``root`` is not a folder."""
        root = Path(root)
        if not root.is_dir():
            raise InputError(root, "ground-truth folder not found")
        found = cls(root)
        if _scan_folder_scene(root) is not None:
            found._add_scan_folder(root)
            return found
        for path in sorted(root.iterdir()):
            if path.name.startswith("."):
                continue
            if path.suffix == ".txt" and path.is_file():
                found.files.setdefault(path.stem, path)
            elif path.is_dir():
                found._add_scan_folder(path)
        return found

    def _add_scan_folder(self, folder: Path) -> None:
        scene = _scan_folder_scene(folder)
        if scene is None or scene in self.files:
            return
        path = folder / GT_SUBFOLDER / f"{scene}.txt"
        if path.is_file():
            self.files[scene] = path
        else:
            self.missing.setdefault(scene, folder)

    def path(self, scene: str, predicted_in: Path) -> Path:
        """The ground-truth file of ``scene``; an InputError that says what to do when there is none."""
        if scene in self.files:
            return self.files[scene]
        if scene in self.missing:
            raise InputError(self.missing[scene], f"has no {GT_SUBFOLDER}/{scene}.txt (benchmark ground truth, one "
                                                  f"value per vertex); write it with `unscene3d export-gt "
                                                  f"{display_path(self.root)} -o GT_DIR` and evaluate with --gt "
                                                  "GT_DIR")
        raise InputError(self.root / f"{scene}.txt", f"no ground truth for scene {scene} (predicted in "
                                                     f"{display_path(predicted_in)})")


def _scan_folder_scene(folder: Path) -> str | None:
    """The scene name of a ScanNet or Pointcept scene folder (as ``load_scan`` names it); None for others."""
    mesh = find_scannet_mesh(folder)
    if mesh is not None:
        return mesh.name[: -len(MESH_SUFFIX)]
    return folder.name if is_pointcept_folder(folder) else None
