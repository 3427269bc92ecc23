"""Evaluation protocols: which ground-truth instances count as objects to find.

``scannet`` counts the 18 ScanNet benchmark classes (the default); ``class-agnostic`` counts every instance
but wall, floor and ceiling (ScanNet200-style); ``all`` counts every instance (for data with instance ids but
no classes). Kept apart from :mod:`unscene3d.evaluation` and free of numpy, so that the command line lists
the protocols without loading numpy (``oversegment`` sets numpy's thread count before loading it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# NYU40 ids of the 18 ScanNet benchmark instance classes.
SCANNET_BENCHMARK_CLASS_IDS: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
# NYU40 wall, floor and ceiling: the scene structure that ScanNet200-style class-agnostic evaluation leaves out.
STRUCTURE_CLASS_IDS: tuple[int, ...] = (1, 2, 22)


@dataclass(frozen=True)
class Protocol:
    """Which ground-truth instances count: those whose label is in ``classes``, or, when ``classes`` is
    None, every instance whose label is not in ``excluded``. Vertices of the others are void."""

    name: str
    classes: tuple[int, ...] | None
    excluded: tuple[int, ...] = ()

    def counts(self, labels: np.ndarray) -> np.ndarray:
        """Per label: whether an instance with that label counts."""
        import numpy as np

        if self.classes is not None:
            return np.isin(labels, self.classes)
        return ~np.isin(labels, self.excluded)


PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol("scannet", SCANNET_BENCHMARK_CLASS_IDS),
        Protocol("class-agnostic", None, STRUCTURE_CLASS_IDS),
        Protocol("all", None),
    )
}
