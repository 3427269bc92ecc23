"""The ``geometric`` modality: a no-weights descriptor per segment that carries objectness.

:func:`geometric_descriptors` turns a scan's :class:`~unscene3d.segments.geometry.SegmentGeometry` into one
standardised vector per segment. Its groups, each standardised over the scan's segments and weighted so that
it counts as much as any other group whatever its width:

- shape: PCA eigen-features of the segment's points (Weinmann et al.'s linearity
  ``(l1 - l2) / l1``, planarity ``(l2 - l3) / l1``, scattering ``l3 / l1`` of the covariance
  eigenvalues ``l1 >= l2 >= l3``): a wall patch is planar, a chair leg linear, clutter scattered;
- size: the standard deviations along the principal axes and the log area: structure is large,
  clutter small;
- orientation: the mean unit normal, its verticality ``|n_z|`` and the normal spread
  ``1 - |mean normal|``: floors and table tops face up, fronts face sideways, curved parts spread;
- height above the floor (bottom, centroid, top): tables tops sit at one height, shelves at others;
- appearance: CIE Lab mean and spread (Lab, so that distances follow perceived colour difference).
"""

from __future__ import annotations

import numpy as np

from unscene3d.segments.geometry import SegmentGeometry


def _standardised(group: np.ndarray) -> np.ndarray:
    std = group.std(axis=0)
    return (group - group.mean(axis=0)) / np.where(std > 1e-9, std, 1.0) / np.sqrt(group.shape[1])


def geometric_descriptors(geometry: SegmentGeometry) -> np.ndarray:
    """(S, 21) float32 descriptor per segment (groups and reasons in the module docstring)."""
    eigen = geometry.eigenvalues
    largest = np.maximum(eigen[:, 0], 1e-12)
    shape = np.stack([(eigen[:, 0] - eigen[:, 1]) / largest, (eigen[:, 1] - eigen[:, 2]) / largest,
                      eigen[:, 2] / largest], axis=1)
    size = np.concatenate([np.sqrt(eigen), np.log(geometry.area + 1e-6)[:, None]], axis=1)
    spread = 1.0 - np.linalg.norm(geometry.normal, axis=1, keepdims=True)
    unit = geometry.unit_normal
    orientation = np.concatenate([unit, np.abs(unit[:, 2:3]), spread], axis=1)
    height = np.stack([geometry.bottom, geometry.centroid[:, 2], geometry.top], axis=1) - geometry.floor
    appearance = np.concatenate([geometry.lab, geometry.lab_std], axis=1)
    groups = [shape, size, orientation, height, appearance]
    return np.concatenate([_standardised(g) for g in groups], axis=1).astype(np.float32)
