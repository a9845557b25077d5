"""Vertebral levels counted from a disc segmentation (the disc model's output) along the cord.

On every axial slice with cord, the disc probability is averaged over a box in front of the cord (near the
midline, :data:`DISC_BOX_MM`): along the cord this profile peaks at each disc, even where the model's discs and
vertebral bodies run together into one blob. Peaks closer than :data:`MIN_GAP_MM` are one disc; a gap much longer
than the others (a disc the model missed) gets the missing discs back, evenly spaced. The discs are then named by
counting from the top one, which is taken as C2-C3: the first disc below the skull (there is no disc between the
skull, C1 and C2), as Spinal Cord Toolbox's ``sct_label_vertebrae`` also anchors on the C2-C3 disc. So the names
are right only for scans that reach C2 (cervical scans); ``top_level`` names another anchor. Every axial slice
takes the level of the vertebra it lies in: C2 above the C2-C3 disc, C3 between the C2-C3 and C3-C4 discs, and so
on.

Arrays are on the canonical (RAS) grid: axis 2 points superior.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

#: the box in front of the cord whose mean disc probability makes the profile: (left-right half width, from, to
#: in front of the cord centre), mm
DISC_BOX_MM = (10.0, 4.0, 45.0)
#: discs closer than this along the cord are one (the shortest vertebra, with its disc, is about 14 mm)
MIN_GAP_MM = 9.0
#: a peak must stand this far above its surroundings (mean probability) to be a disc
MIN_PROMINENCE = 0.05
#: a gap longer than this many times the median gap between discs holds discs the model missed
GAP_FACTOR = 1.6
#: the level above the top disc: 2 = C2 (the top disc is C2-C3)
TOP_LEVEL = 2


def disc_profile(probabilities: np.ndarray, cord: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Mean disc probability in front of the cord on each axial slice (0 on slices without cord)."""
    half_width, start, stop = DISC_BOX_MM
    profile = np.zeros(cord.shape[2])
    for z in np.flatnonzero(cord.any(axis=(0, 1))):
        x, y = np.nonzero(cord[:, :, z])
        cx, cy = x.mean(), y.mean()
        xs = slice(max(0, round(cx - half_width / spacing_mm[0])), round(cx + half_width / spacing_mm[0]) + 1)
        ys = slice(max(0, round(cy + start / spacing_mm[1])), round(cy + stop / spacing_mm[1]) + 1)
        region = probabilities[xs, ys, z]
        profile[z] = float(region.mean()) if region.size else 0.0
    return profile


def find_discs(probabilities: np.ndarray, cord: np.ndarray, spacing_mm: tuple[float, float, float]) -> list[float]:
    """Heights (axis-2 voxel index, fractional) of the discs along the cord, top first."""
    profile = gaussian_filter1d(disc_profile(probabilities, cord, spacing_mm), sigma=1.0 / spacing_mm[2])
    peaks, _ = find_peaks(profile, distance=max(1.0, MIN_GAP_MM / spacing_mm[2]), prominence=MIN_PROMINENCE)
    heights = [_refined(profile, int(peak)) for peak in peaks[::-1]]
    return _fill_gaps(heights)


def level_map_from_discs(heights: list[float], cord: np.ndarray, top_level: int = TOP_LEVEL) -> np.ndarray:
    """The cord's voxels labelled with the level of their slice (``top_level`` above the top disc, one more below
    each disc); zeros when there is no disc."""
    levels = np.zeros(cord.shape, dtype=np.int32)
    if not heights:
        return levels
    slices = np.arange(cord.shape[2])
    per_slice = top_level + (np.asarray(heights)[None, :] > slices[:, None]).sum(axis=1)
    levels[:] = per_slice[None, None, :]
    levels[cord == 0] = 0
    return levels


def _refined(profile: np.ndarray, peak: int) -> float:
    """A peak's height to a fraction of a slice: the vertex of the parabola through it and its neighbours."""
    if not 0 < peak < len(profile) - 1:
        return float(peak)
    below, at, above = profile[peak - 1 : peak + 2]
    curvature = below - 2 * at + above
    return float(peak + (0.5 * (below - above) / curvature if curvature < 0 else 0.0))


def _fill_gaps(heights: list[float]) -> list[float]:
    """Add evenly spaced discs into gaps longer than :data:`GAP_FACTOR` times the median gap."""
    if len(heights) < 3:
        return heights
    gaps = -np.diff(heights)
    typical = float(np.median(gaps))
    filled = [heights[0]]
    for height, gap in zip(heights[1:], gaps, strict=True):
        missing = round(gap / typical) - 1 if gap > GAP_FACTOR * typical else 0
        filled += [filled[-1] - gap * (k + 1) / (missing + 1) for k in range(missing)]
        filled.append(height)
    return filled
