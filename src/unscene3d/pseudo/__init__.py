"""Pseudo masks: masked normalized cuts over segment features (UnScene3D's first stage)."""

from unscene3d.pseudo.ncut import DEFAULT_TAU, NCutConfig, NCutResult, masked_ncut
from unscene3d.pseudo.pipeline import (
    PseudoMaskOptions,
    PseudoMasks,
    pseudo_masks_for_scene,
    read_pseudo_masks,
    run_pseudo_masks,
    write_pseudo_masks,
)

__all__ = [
    "DEFAULT_TAU",
    "NCutConfig",
    "NCutResult",
    "PseudoMaskOptions",
    "PseudoMasks",
    "masked_ncut",
    "pseudo_masks_for_scene",
    "read_pseudo_masks",
    "run_pseudo_masks",
    "write_pseudo_masks",
]
