"""Label-free checks of a cord mask on a canonical (RAS) grid: what a correct cord segmentation of a healthy scan
passes without any manual mask (see ``../shared/data/real-fullfov/README.md``).

- coverage: axial slices (along the superior axis) that hold cord, and the empty slices between the first and
  the last of them (gaps);
- connected components of the whole mask (one cord is one structure);
- cross-sectional area (mm2) per axial slice, corrected for the cord's tilt: the area of a slice times the cosine
  of the angle between the cord's centerline and the slice normal (as Spinal Cord Toolbox's ``sct_process_
  segmentation`` corrects CSA for the cord's angle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lesionseg.transforms.postprocessing import count_components


@dataclass(frozen=True)
class CordCoverage:
    """Axial slices of a canonical grid and the cord in them.

    Attributes:
        slices: axial slices of the grid.
        with_cord: slices holding at least one cord voxel.
        gaps: slices without cord between the first and the last slice with cord.
        multi_component_slices: slices whose cord falls into more than one in-plane component.
    """

    slices: int
    with_cord: int
    gaps: int
    multi_component_slices: int


def cord_coverage(cord: np.ndarray) -> CordCoverage:
    """Coverage of a RAS cord mask ``(X, Y, Z)`` along ``Z``."""
    mask = np.asarray(cord) > 0
    present = mask.any(axis=(0, 1))
    indices = np.flatnonzero(present)
    gaps = int((indices[-1] - indices[0] + 1) - len(indices)) if len(indices) else 0
    structure = ndimage.generate_binary_structure(2, 2)
    multi = sum(1 for z in indices if ndimage.label(mask[:, :, z], structure=structure)[1] > 1)
    return CordCoverage(slices=int(mask.shape[2]), with_cord=int(len(indices)), gaps=gaps,
                        multi_component_slices=int(multi))


def cross_sectional_areas_mm2(cord: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Tilt-corrected cross-sectional area (mm2) of each axial slice that holds cord, in the grid's ``Z`` order
    (foot first).

    The centerline is the per-slice centroid, smoothed over 3 slices; an isolated slice counts as untilted.
    """
    mask = np.asarray(cord) > 0
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    if not len(slices):
        return np.zeros(0)
    areas = mask[:, :, slices].sum(axis=(0, 1)) * spacing_mm[0] * spacing_mm[1]
    centroids = np.array([ndimage.center_of_mass(mask[:, :, z]) for z in slices]) * np.asarray(spacing_mm[:2])
    heights = slices * spacing_mm[2]
    if len(slices) < 2:
        return areas.astype(float)
    slopes = np.stack([np.gradient(centroids[:, axis], heights) for axis in range(2)], axis=1)
    slopes = ndimage.uniform_filter1d(slopes, size=3, axis=0, mode="nearest")
    cosine = 1.0 / np.sqrt(1.0 + (slopes**2).sum(axis=1))
    return (areas * cosine).astype(float)


def component_count(cord: np.ndarray) -> int:
    """Connected components (26-connectivity) of a cord mask."""
    return count_components(cord)
