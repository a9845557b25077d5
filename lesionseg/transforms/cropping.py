"""Crops around a structure (the cord) for the cascade: pure box functions shared by training and inference
(the TorchIO transform that jitters the box during training is
:class:`lesionseg.transforms.augmentation.RandomCropAroundLabel`).
"""

from __future__ import annotations

import numpy as np

#: (start, stop) voxel indices per axis, stop exclusive.
Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def bounding_box(mask: np.ndarray) -> Box | None:
    """Tight box of a mask's foreground, or None when it is empty."""
    points = np.argwhere(np.asarray(mask) > 0)
    if not len(points):
        return None
    low, high = points.min(axis=0), points.max(axis=0) + 1
    return tuple((int(a), int(b)) for a, b in zip(low, high, strict=True))  # type: ignore[return-value]


def expand_box(
    box: Box,
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    margin_mm: tuple[float, float, float] | tuple[tuple[float, float], ...],
) -> Box:
    """Grow ``box`` by ``margin_mm`` on each side (or per side: ``((before, after), ...)``), clipped to ``shape``."""
    grown = []
    for axis, ((start, stop), size, spacing) in enumerate(zip(box, shape, spacing_mm, strict=True)):
        margin = margin_mm[axis]
        before, after = margin if isinstance(margin, tuple) else (margin, margin)
        grown.append((max(0, start - int(np.ceil(before / spacing))), min(size, stop + int(np.ceil(after / spacing)))))
    return tuple(grown)  # type: ignore[return-value]


def crop_box_around(
    mask: np.ndarray, spacing_mm: tuple[float, float, float], margin_mm: tuple[float, float, float]
) -> Box | None:
    """The box of ``mask`` grown by ``margin_mm`` (clipped to the array), or None for an empty mask."""
    box = bounding_box(mask)
    return None if box is None else expand_box(box, mask.shape, spacing_mm, margin_mm)


def box_slices(box: Box) -> tuple[slice, slice, slice]:
    """Numpy slices of a box."""
    return tuple(slice(start, stop) for start, stop in box)  # type: ignore[return-value]


def crop_affine(affine: np.ndarray, box: Box) -> np.ndarray:
    """Affine of the crop ``box`` of an array whose affine is ``affine`` (same voxel size, shifted origin)."""
    shifted = np.array(affine, dtype=float, copy=True)
    shifted[:3, 3] = shifted[:3, :3] @ np.array([start for start, _ in box], dtype=float) + shifted[:3, 3]
    return shifted
