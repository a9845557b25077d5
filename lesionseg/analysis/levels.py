"""Vertebral levels: names, a level per axial slice, and the intervertebral discs between levels.

Level values follow Spinal Cord Toolbox and the PAM50 template: 1..7 = C1..C7, 8..19 = T1..T12, 20..24 = L1..L5,
25 = S1 (0 = no level). Arrays are on the canonical (RAS) grid: axis 2 points superior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_REGIONS = (("C", 1, 7), ("T", 8, 19), ("L", 20, 24), ("S", 25, 25))


def level_name(value: int | None) -> str:
    """``3`` -> ``"C3"``, ``8`` -> ``"T1"``, ``20`` -> ``"L1"``; ``""`` for 0, None or a value past S1."""
    if value is None:
        return ""
    for letter, first, last in _REGIONS:
        if first <= value <= last:
            return f"{letter}{value - first + 1}"
    return ""


def disc_name(upper: int, lower: int) -> str:
    """The disc between two levels, e.g. ``"C3-C4"``."""
    return f"{level_name(upper)}-{level_name(lower)}"


@dataclass(frozen=True)
class Disc:
    """An intervertebral disc seen as the boundary between two levels along the superior axis."""

    name: str
    #: position along canonical axis 2 (voxel index; a half-integer between the two levels' slices)
    z: float


@dataclass(frozen=True)
class SliceLevels:
    """The level of every axial slice (0 where the map has none) and the discs between consecutive levels."""

    per_slice: np.ndarray
    discs: tuple[Disc, ...]

    def at(self, z: np.ndarray) -> np.ndarray:
        """Levels of slice indices ``z`` (0 outside the map)."""
        return self.per_slice[np.clip(z, 0, len(self.per_slice) - 1)]


def slice_levels(levels: np.ndarray) -> SliceLevels:
    """The most frequent non-zero level on each axial slice of a level map, slices between two labelled slices
    given the nearer one's level, and a disc wherever the level changes from one slice to the next.

    Args:
        levels: integer level map (e.g. a labelled cord), canonical grid, 0 outside.
    """
    values = np.asarray(levels).astype(np.int64)
    depth = values.shape[2]
    per_slice = np.zeros(depth, dtype=np.int64)
    for z in range(depth):
        labelled = values[:, :, z][values[:, :, z] > 0]
        if labelled.size:
            per_slice[z] = np.bincount(labelled).argmax()
    labelled_slices = np.flatnonzero(per_slice)
    if labelled_slices.size:
        inside = np.arange(labelled_slices[0], labelled_slices[-1] + 1)
        nearest = labelled_slices[np.abs(inside[:, None] - labelled_slices[None, :]).argmin(axis=1)]
        per_slice[inside] = per_slice[nearest]
    discs = tuple(
        Disc(disc_name(int(per_slice[z + 1]), int(per_slice[z])), z + 0.5)
        for z in range(depth - 1)
        if per_slice[z] and per_slice[z + 1] and per_slice[z] != per_slice[z + 1]
    )
    return SliceLevels(per_slice=per_slice, discs=discs)
