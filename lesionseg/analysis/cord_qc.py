"""Label-free checks of a cord mask on a canonical (RAS) grid: what a correct cord segmentation of a healthy scan
passes without any manual mask (see ``../shared/data/real-fullfov/README.md``).

- coverage: axial slices (along the superior axis) that hold cord, the empty slices between the first and the
  last of them (gaps) and the empty slices below and above them;
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
        below, above: slices without cord below the lowest and above the highest slice with cord (all slices
            below when there is no cord).
    """

    slices: int
    with_cord: int
    gaps: int
    multi_component_slices: int
    below: int = 0
    above: int = 0


def cord_coverage(cord: np.ndarray) -> CordCoverage:
    """Coverage of a RAS cord mask ``(X, Y, Z)`` along ``Z``."""
    mask = np.asarray(cord) > 0
    present = mask.any(axis=(0, 1))
    indices = np.flatnonzero(present)
    gaps = int((indices[-1] - indices[0] + 1) - len(indices)) if len(indices) else 0
    structure = ndimage.generate_binary_structure(2, 2)
    multi = sum(1 for z in indices if ndimage.label(mask[:, :, z], structure=structure)[1] > 1)
    below, above = mask.shape[2], 0
    if len(indices):
        below, above = int(indices[0]), mask.shape[2] - 1 - int(indices[-1])
    return CordCoverage(slices=int(mask.shape[2]), with_cord=int(len(indices)), gaps=gaps,
                        multi_component_slices=int(multi), below=below, above=above)


def is_axial_stack(spacing_mm: tuple[float, float, float]) -> bool:
    """Whether a canonical grid is an axial stack: slices (along ``Z``) over twice as thick as the in-plane voxels."""
    return spacing_mm[2] > 2 * min(spacing_mm[:2])


def coverage_warning(coverage: CordCoverage, spacing_mm: tuple[float, float, float]) -> str:
    """A warning for an axial stack whose cord mask stops short of its lowest or highest slices ("" otherwise).

    On an axial stack of the spine the cord crosses every slice above the conus, so a slice at either end
    without cord is one the cord model missed (or, at the top, the brainstem): lesions are reported only inside
    the cord, so nothing was sought there. Sagittal and 3D images are left alone: their cord ends in the field of
    view (conus, brainstem).
    """
    if not coverage.with_cord or not is_axial_stack(spacing_mm) or not (coverage.below or coverage.above):
        return ""
    ends = [f"the {count} {side}" for count, side in ((coverage.below, "lowest"), (coverage.above, "highest"))
            if count]
    return (f"cord found on {coverage.with_cord} of {coverage.slices} axial slices, not on {' and '.join(ends)}: "
            "lesions are reported only inside the cord; check those slices in the report")


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


def median_csa_mm2(cord: np.ndarray, spacing_mm: tuple[float, float, float]) -> float | None:
    """Median tilt-corrected cross-sectional area (mm2, one decimal) over the axial slices with cord; None without
    cord. (Spinal Cord Toolbox's ``sct_process_segmentation`` reports the mean per level; the median is not pulled
    by the partial slices at the mask's ends.)"""
    areas = cross_sectional_areas_mm2(cord, spacing_mm)
    return round(float(np.median(areas)), 1) if len(areas) else None


def component_count(cord: np.ndarray) -> int:
    """Connected components (26-connectivity) of a cord mask."""
    return count_components(cord)
