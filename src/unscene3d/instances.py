"""A scored set of instance masks: the one container the baselines, pseudo masks, predictions, densification
and evaluation pass around (after detectron2's ``structures/instances.py``).

``masks`` (K, N) bool over some units (vertices, segments or a file's input points), ``scores`` (K,) finite
float64, and any further per-instance fields (``queries``, ``source``, ...) whose first axis has K entries.
Every field is checked to have the same length; indexing and concatenation act on all of them, so a mask
never loses its score or its query. An index of one ``int`` keeps the set two-dimensional (one instance).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from unscene3d.scene import Scene

Index = int | slice | np.ndarray | Sequence[int] | Sequence[bool]


class Instances:
    """K instance masks over N units with their scores and optional per-instance fields (module docstring).

    Fields are read as attributes (``prediction.queries``); the set is not changed in place: indexing,
    :meth:`cat` and the conversions return new sets.

    Raises:
        ValueError: masks that are not (K, N), scores that are not (K,) and finite, a field of another length.
    """

    def __init__(self, masks: np.ndarray, scores: np.ndarray | Sequence[float], **fields: np.ndarray) -> None:
        masks = np.asarray(masks)
        if masks.ndim != 2:
            raise ValueError(f"masks must be a (K, N) array, got shape {masks.shape}")
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (len(masks),):
            raise ValueError(f"{len(masks)} masks need {len(masks)} scores, got shape {scores.shape}")
        if not np.all(np.isfinite(scores)):
            raise ValueError("scores must be finite")
        checked = {}
        for name, value in fields.items():
            if hasattr(Instances, name):
                raise ValueError(f"{name!r} cannot name a field: Instances already has it")
            value = np.asarray(value)
            if value.ndim == 0 or len(value) != len(masks):
                raise ValueError(f"field {name!r} needs {len(masks)} entries, got shape {value.shape}")
            checked[name] = value
        self.masks = masks if masks.dtype == bool else masks != 0
        self.scores = scores
        self._fields = checked

    @classmethod
    def empty(cls, num_units: int, **fields: np.dtype | type) -> Instances:
        """No instance over ``num_units`` units; ``fields`` names each extra field's dtype."""
        return cls(np.zeros((0, num_units), dtype=bool), np.zeros(0),
                   **{name: np.zeros(0, dtype=dtype) for name, dtype in fields.items()})

    @property
    def num_units(self) -> int:
        """N: the units (vertices, segments, points) the masks are over."""
        return self.masks.shape[1]

    def __getattr__(self, name: str) -> np.ndarray:
        fields = self.__dict__.get("_fields", {})  # through __dict__: also safe while copying or unpickling
        if name in fields:
            return fields[name]
        raise AttributeError(f"{type(self).__name__} has no field {name!r} (fields: {', '.join(fields) or 'none'})")

    def __len__(self) -> int:
        return len(self.masks)

    def __iter__(self) -> Iterator[Instances]:
        # Without this Python would iterate through __getitem__, and ``masks, scores = instances`` would
        # silently unpack two one-instance sets whenever K == 2.
        raise TypeError("Instances are not iterable: index them, or read .masks and .scores")

    def __getitem__(self, index: Index) -> Instances:
        """The instances at ``index`` (an int, a slice, a (K,) bool array or an array of positions)."""
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"instance {index} out of range for {len(self)} instances")
            index = slice(int(index), int(index) + 1 or None)
        elif not isinstance(index, slice):
            index = np.asarray(index)
            if index.size == 0:
                index = index.astype(np.int64)  # np.asarray([]) is float
            if index.ndim != 1 or not (index.dtype == bool or np.issubdtype(index.dtype, np.integer)):
                raise IndexError(f"index instances with an int, a slice, or a 1-D bool or int array, got {index!r}")
            if index.dtype == bool and len(index) != len(self):
                raise IndexError(f"bool index of {len(index)} entries for {len(self)} instances")
        return Instances(self.masks[index], self.scores[index],
                         **{name: value[index] for name, value in self._fields.items()})

    @classmethod
    def cat(cls, parts: Sequence[Instances]) -> Instances:
        """The instances of ``parts`` one after the other; all over the same units, with the same fields."""
        if not parts:
            raise ValueError("cat needs at least one set of instances (the units are unknown otherwise)")
        first = parts[0]
        for part in parts[1:]:
            if part.num_units != first.num_units:
                raise ValueError(f"cannot concatenate masks over {part.num_units} and {first.num_units} units")
            if part._fields.keys() != first._fields.keys():
                raise ValueError(f"cannot concatenate instances with fields {sorted(part._fields)} and "
                                 f"{sorted(first._fields)}")
        return cls(np.concatenate([part.masks for part in parts]), np.concatenate([part.scores for part in parts]),
                   **{name: np.concatenate([part._fields[name] for part in parts]) for name in first._fields})

    def sorted_by_score(self) -> Instances:
        """The instances in descending score order (ties keep their order)."""
        return self[np.argsort(-self.scores, kind="stable")]

    def over(self, labels: np.ndarray) -> Instances:
        """Masks over units mapped to finer ones: ``labels`` (M,) gives each fine unit's unit (e.g. each vertex's
        segment), and the result is over the M fine units."""
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_units):
            raise ValueError(f"labels must lie in [0, {self.num_units}), got [{labels.min()}, {labels.max()}]")
        return Instances(self.masks[:, labels], self.scores, **self._fields)

    def to_input(self, scene: Scene) -> Instances:
        """Masks over the scene's vertices laid out per input point of its file (a point the scene dropped,
        such as a cloud's NaN row, is in no mask): what the benchmark files hold."""
        return Instances(scene.to_input(self.masks, False), self.scores, **self._fields)

    def __repr__(self) -> str:
        fields = "".join(f", {name}" for name in self._fields)
        return f"Instances({len(self)} masks over {self.num_units} units, scores{fields})"
