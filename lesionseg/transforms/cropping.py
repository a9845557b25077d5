"""Crops around a structure (the cord) for the cascade: a pure box function shared by training and
inference, and a TorchIO transform that jitters the box during training.
"""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio
from torchio.transforms.augmentation.random_transform import RandomTransform
from torchio.transforms.spatial_transform import SpatialTransform

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


class RandomCropAroundLabel(RandomTransform, SpatialTransform):
    """Crop a subject to the box of one of its label maps, grown by a margin whose every side is jittered.

    Parameters are sampled here; the crop itself is TorchIO's deterministic ``Crop``. A subject whose label is
    empty is returned uncropped.

    Args:
        label_name: the label map defining the box (e.g. ``"cord"``).
        margin_mm: margin per axis (mm) before jitter.
        jitter_mm: each side's margin varies uniformly within ``± jitter_mm`` (never below 0).
    """

    def __init__(self, label_name: str, margin_mm: tuple[float, float, float], jitter_mm: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.label_name = label_name
        self.margin_mm = tuple(float(m) for m in margin_mm)
        self.jitter_mm = float(jitter_mm)
        self.args_names = ["label_name", "margin_mm", "jitter_mm"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        label = subject[self.label_name]
        mask = label.data[0].numpy()
        box = bounding_box(mask)
        if box is None:
            return subject
        jitter = torch.empty(3, 2).uniform_(-self.jitter_mm, self.jitter_mm).numpy()
        margins = tuple(
            (max(0.0, m + float(j[0])), max(0.0, m + float(j[1]))) for m, j in zip(self.margin_mm, jitter, strict=True)
        )
        start_stop = expand_box(box, mask.shape, label.spacing, margins)
        cropping = []
        for (start, stop), size in zip(start_stop, mask.shape, strict=True):
            cropping.extend([start, size - stop])
        return tio.Crop(tuple(cropping))(subject)
