"""Vertebral levels: names, a level per axial slice, and the intervertebral discs between levels.

Level values follow Spinal Cord Toolbox and the PAM50 template: 1..7 = C1..C7, 8..19 = T1..T12, 20..24 = L1..L5,
25 = S1 (0 = no level). Arrays are on the canonical (RAS) grid: axis 2 points superior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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


#: How a user's level file beside an input is read, and what the lesion table's ``level_source`` then says:
#: ``map``, every voxel of a level labelled with it (e.g. Spinal Cord Toolbox's labelled cord ``*_seg_labeled``);
#: ``discs`` and ``vertebrae``, single-voxel point labels in SCT's two conventions: value n on the disc at the top of
#: vertebra n (3 = C2-C3), or at the mid-height of vertebra n.
LEVEL_FILE_KINDS = {
    "map": "level map",
    "discs": "disc labels (Spinal Cord Toolbox convention: 3 = C2-C3 disc)",
    "vertebrae": "vertebral-level labels (mid-height of each vertebra)",
}
#: SCT's pontomedullary groove and junction labels, written with disc labels: not levels, ignored
_PONTOMEDULLARY = (49, 50)
#: a label value with at most this many voxels is a point (a single voxel, or a 3 x 3 x 3 blob at most)
_POINT_VOXELS = 27


def looks_like_points(values: np.ndarray) -> bool:
    """Whether an integer label image holds point labels rather than a level map: every value at most 27 voxels."""
    counts = np.bincount(np.asarray(values, dtype=np.int64).ravel().clip(min=0))[1:]
    return bool(counts.any() and counts[counts > 0].max() <= _POINT_VOXELS)


def level_map_from(values: np.ndarray, kind: str) -> np.ndarray:
    """A level file's integer values as a level map: as they are (``map``), or from point labels.

    Raises:
        ValueError: point labels given as a level map, or point labels that give no levels.
    """
    if kind == "map":
        if looks_like_points(values):
            raise ValueError("point labels (at most 27 voxels per value), not a level map: give --levels-kind discs "
                             "or vertebrae (Spinal Cord Toolbox's disc or vertebral-level labels)")
        return values
    try:
        return levels_from_points(values, kind)
    except ValueError as error:
        raise ValueError(f"{kind} labels: {error}") from None


def levels_from_points(values: np.ndarray, kind: str) -> np.ndarray:
    """A level map (every voxel of an axial slice given that slice's level, 0 outside) from point labels.

    ``discs``: vertebra n spans from disc n down to disc n + 1; ``vertebrae``: the discs lie half-way between
    consecutive mid-heights. Levels missing between two labelled ones are placed by linear interpolation; the map
    reaches one vertebra (discs: the vertebra above the top disc and the one below the lowest) or half of one
    (vertebrae) past the outermost labels, at their mean spacing.

    Raises:
        ValueError: fewer than two levels labelled, or labels not ordered head to foot (level numbers rise
            downwards).
    """
    labels = np.asarray(values, dtype=np.int64).clip(min=0)
    labels[np.isin(labels, _PONTOMEDULLARY)] = 0
    found = np.unique(labels[labels > 0])
    if found.size < 2:
        raise ValueError(f"{found.size} level(s) labelled: point labels need at least two")
    heights = np.array([c[2] for c in ndimage.center_of_mass(labels > 0, labels, found)])
    if np.any(np.diff(heights) >= 0):
        raise ValueError("the labels do not run head to foot (a higher level number must lie lower)")
    tops, first = _level_tops(found, heights, kind)
    per_slice = np.zeros(labels.shape[2], dtype=np.int64)
    z = np.arange(labels.shape[2])
    index = np.searchsorted(-tops, -z, side="right") - 1
    inside = (index >= 0) & (index < tops.size - 1)
    per_slice[inside] = first + index[inside]
    return np.broadcast_to(per_slice.astype(np.int32), labels.shape).copy()


def _level_tops(found: np.ndarray, heights: np.ndarray, kind: str) -> tuple[np.ndarray, int]:
    """Heights (axis-2 index, descending) of the top of each level from the first one returned, plus the bottom
    of the last one."""
    every = np.arange(found[0], found[-1] + 1)
    placed = np.interp(every, found, heights)
    spacing = (heights[0] - heights[-1]) / (found[-1] - found[0])
    if kind == "discs":
        first = max(int(found[0]) - 1, 1)
        above = [placed[0] + spacing] if first < found[0] else []
        return np.concatenate([above, placed, [placed[-1] - spacing]]), first
    if kind == "vertebrae":
        centres = np.concatenate([[placed[0] + spacing], placed, [placed[-1] - spacing]])
        return (centres[:-1] + centres[1:]) / 2, int(found[0])
    raise ValueError(f"unknown kind of level labels {kind!r}: expected one of discs, vertebrae")
