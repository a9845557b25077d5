"""Resampling of RAS arrays with SimpleITK (no torch needed at inference).

The working grid of an image at a voxel size is the one TorchIO's ``Resample(spacing)`` builds for training
(:func:`working_grid`): the same axes, ``floor(extent / spacing)`` voxels (so the new grid never reaches past
the old one), centred on the old grid. :func:`resample` then interpolates any array onto any grid.

SimpleITK works in physical coordinates; RAS millimetres serve as well as its usual LPS, as the input and output
grids are both given in them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import SimpleITK as sitk

_INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}


def spacing_of(affine: np.ndarray) -> np.ndarray:
    """Voxel size (mm) along each array axis of an affine."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def working_grid(
    shape: tuple[int, ...], affine: np.ndarray, spacing_mm: tuple[float, float, float]
) -> tuple[tuple[int, int, int], np.ndarray]:
    """The grid ``(shape, affine)`` of voxel size ``spacing_mm`` covering the image: same axes, centred on it,
    ``floor(extent / spacing)`` voxels per axis (singleton axes stay singleton)."""
    affine = np.asarray(affine, dtype=np.float64)
    old_shape, old_spacing = np.asarray(shape[:3], dtype=np.float64), spacing_of(affine)
    new_spacing = np.asarray(spacing_mm, dtype=np.float64)
    new_shape = np.maximum(np.floor(old_shape * old_spacing / new_spacing), 1)
    new_shape[old_shape == 1] = 1
    direction = affine[:3, :3] / old_spacing
    centre = affine[:3, :3] @ ((old_shape - 1) / 2) + affine[:3, 3]
    new_affine = np.eye(4)
    new_affine[:3, :3] = direction * new_spacing
    new_affine[:3, 3] = centre - new_affine[:3, :3] @ ((new_shape - 1) / 2)
    return tuple(int(n) for n in new_shape), new_affine  # type: ignore[return-value]


def _as_sitk(data: np.ndarray, affine: np.ndarray) -> sitk.Image:
    affine = np.asarray(affine, dtype=np.float64)
    spacing = spacing_of(affine)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(data).transpose(2, 1, 0)))
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(affine[:3, 3].tolist())
    image.SetDirection((affine[:3, :3] / spacing).ravel().tolist())
    return image


def resample(
    data: np.ndarray,
    affine: np.ndarray,
    shape: tuple[int, ...],
    target_affine: np.ndarray,
    *,
    interpolation: Literal["linear", "nearest"] = "linear",
) -> np.ndarray:
    """``data`` (3D, on ``affine``) interpolated onto the grid ``(shape, target_affine)``; 0 outside the image.
    Linear interpolation returns float32; nearest keeps the dtype."""
    source = _as_sitk(data.astype(np.float32) if interpolation == "linear" else data, affine)
    reference = _as_sitk(np.zeros(tuple(int(s) for s in shape[:3]), dtype=np.uint8), target_affine)
    resampled = sitk.Resample(source, reference, sitk.Transform(), _INTERPOLATORS[interpolation], 0.0)
    return sitk.GetArrayFromImage(resampled).transpose(2, 1, 0)


def resample_to_spacing(
    data: np.ndarray, affine: np.ndarray, spacing_mm: tuple[float, float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """``data`` on its working grid at ``spacing_mm`` (unchanged when None), with that grid's affine."""
    if spacing_mm is None:
        return np.asarray(data, dtype=np.float32), np.asarray(affine, dtype=np.float64)
    shape, target = working_grid(data.shape, affine, spacing_mm)
    return resample(data, affine, shape, target), target


def pad_edge(data: np.ndarray, affine: np.ndarray, width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``data`` padded by ``width`` voxels of its edge values on every side, with the affine of the padded grid."""
    shifted = np.asarray(affine, dtype=np.float64).copy()
    shifted[:3, 3] -= shifted[:3, :3] @ np.full(3, float(width))
    return np.pad(data, width, mode="edge"), shifted
