"""The lesion table of a prediction: one row per lesion (connected component) and totals per image.

Per lesion: id, volume (mm3), centroid in scanner coordinates (RAS and LPS, mm), extent along the cord (mm),
maximum probability, and the vertebral level when a level map is given. The cord direction is the principal
axis of the cord mask when there is one (the superior axis otherwise), so the extent follows a tilted cord.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lesionseg.transforms.postprocessing import label_components


@dataclass(frozen=True)
class LesionRow:
    """One lesion."""

    lesion_id: int
    volume_mm3: float
    centroid_ras_mm: tuple[float, float, float]
    centroid_lps_mm: tuple[float, float, float]
    extent_along_cord_mm: float
    max_probability: float
    vertebral_level: int | None


@dataclass(frozen=True)
class LesionTable:
    """All lesions of one image and their totals."""

    lesions: tuple[LesionRow, ...]
    connectivity: int
    min_volume_mm3: float

    @property
    def count(self) -> int:
        return len(self.lesions)

    @property
    def total_volume_mm3(self) -> float:
        return float(sum(row.volume_mm3 for row in self.lesions))


def remove_small_lesions(
    mask: np.ndarray, spacing_mm: Sequence[float], min_volume_mm3: float, *, connectivity: int = 26
) -> np.ndarray:
    """The mask without components of ``min_volume_mm3`` or less (uint8)."""
    if min_volume_mm3 <= 0:
        return (np.asarray(mask) > 0).astype(np.uint8)
    labels, count = label_components(mask, connectivity=connectivity)
    sizes = np.bincount(labels.ravel(), minlength=count + 1) * float(np.prod(spacing_mm))
    keep = sizes > min_volume_mm3
    keep[0] = False
    return keep[labels].astype(np.uint8)


def keep_lesions_in_cord(
    mask: np.ndarray, cord: np.ndarray, *, min_fraction: float, connectivity: int = 26
) -> np.ndarray:
    """The lesions (connected components) of ``mask`` with at least ``min_fraction`` of their voxels inside the
    (undilated) ``cord`` mask, as uint8; ``min_fraction`` 0 keeps every lesion."""
    mask = (np.asarray(mask) > 0).astype(np.uint8)
    if min_fraction <= 0:
        return mask
    labels, count = label_components(mask, connectivity=connectivity)
    if count == 0:
        return mask
    index = np.arange(1, count + 1)
    inside = ndimage.sum_labels(np.asarray(cord) > 0, labels, index)
    sizes = ndimage.sum_labels(mask, labels, index)
    keep = np.concatenate([[False], inside >= min_fraction * sizes])
    return keep[labels].astype(np.uint8)


def cord_axis(cord: np.ndarray | None, affine: np.ndarray) -> np.ndarray:
    """Unit vector (world, RAS) along the cord: the principal axis of the cord voxels, pointing superior."""
    if cord is None or int(np.count_nonzero(cord)) < 3:
        return np.array([0.0, 0.0, 1.0])
    points = _world(np.argwhere(cord > 0), affine)
    centred = points - points.mean(axis=0)
    _, _, vectors = np.linalg.svd(centred[:: max(1, len(centred) // 20000)], full_matrices=False)
    axis = vectors[0]
    return axis if axis[2] >= 0 else -axis


def _world(voxels: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return voxels @ affine[:3, :3].T + affine[:3, 3]


def _lesion_level(levels: np.ndarray, inside: np.ndarray, voxels: np.ndarray, level_points: np.ndarray | None) -> int | None:
    """The most frequent level among a lesion's voxels, else the level of the labelled voxel nearest its centre."""
    if level_points is None or not len(level_points):
        return None
    values = levels[inside]
    values = values[values > 0]
    if len(values):
        return int(np.bincount(values.astype(int)).argmax())
    nearest = level_points[np.argmin(((level_points - voxels.mean(axis=0)) ** 2).sum(axis=1))]
    return int(levels[tuple(nearest)])


def lesion_table(
    mask: np.ndarray,
    affine: np.ndarray,
    *,
    probabilities: np.ndarray | None = None,
    cord: np.ndarray | None = None,
    levels: np.ndarray | None = None,
    connectivity: int = 26,
    min_volume_mm3: float = 0.0,
) -> LesionTable:
    """Describe every lesion of a binary mask.

    Args:
        mask: binary lesion mask (any grid), shape (X, Y, Z).
        affine: voxel-to-world (RAS mm) affine of that grid.
        probabilities: same grid, for the maximum probability per lesion.
        cord: same grid, for the direction along which extents are measured.
        levels: same grid, integer vertebral levels (0 outside); a lesion gets the most frequent level among
            its voxels, or the level of the nearest labelled voxel.
        connectivity: 6, 18 or 26.
        min_volume_mm3: lesions of this volume or less are left out.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    labels, count = label_components(mask, connectivity=connectivity)
    axis = cord_axis(cord, affine)
    level_points = np.argwhere(levels > 0) if levels is not None else None
    rows = []
    for index in range(1, count + 1):
        voxels = np.argwhere(labels == index)
        volume = len(voxels) * voxel_mm3
        if volume <= min_volume_mm3:
            continue
        points = _world(voxels.astype(float), affine)
        centroid = points.mean(axis=0)
        along = points @ axis
        # extent of the voxel centres plus one voxel's size along the axis
        extent = float(along.max() - along.min() + np.abs(axis * spacing).max())
        maximum = float(probabilities[labels == index].max()) if probabilities is not None else 1.0
        level = _lesion_level(levels, labels == index, voxels, level_points) if levels is not None else None
        rows.append(
            LesionRow(
                lesion_id=len(rows) + 1,
                volume_mm3=round(volume, 3),
                centroid_ras_mm=tuple(round(float(v), 2) for v in centroid),  # type: ignore[arg-type]
                centroid_lps_mm=tuple(round(float(v), 2) for v in centroid * np.array([-1, -1, 1])),  # type: ignore[arg-type]
                extent_along_cord_mm=round(extent, 2),
                max_probability=round(maximum, 4),
                vertebral_level=level,
            )
        )
    return LesionTable(lesions=tuple(rows), connectivity=connectivity, min_volume_mm3=min_volume_mm3)
