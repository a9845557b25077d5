"""Vertebral levels counted from a disc segmentation (the disc model's output) along the cord.

Each connected component of the disc mask near the cord is a disc candidate; candidates closer than
:data:`MERGE_MM` along the superior axis are one disc; a gap much longer than the others (a disc the model missed)
gets the missing discs back, evenly spaced. The discs are then named by counting from the top one, which is taken
as C2-C3: the first disc below the skull (there is no disc between the skull, C1 and C2), as Spinal Cord
Toolbox's ``sct_label_vertebrae`` also anchors on the C2-C3 disc. So the names are right only for scans that reach
C2 (cervical scans); ``top_level`` names another anchor. Every axial slice takes the level of the vertebra it
lies in: C2 above the C2-C3 disc, C3 between the C2-C3 and C3-C4 discs, and so on.

Arrays are on the canonical (RAS) grid: axis 2 points superior.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import label, regionprops

#: disc candidates smaller than this are noise (a cervical disc is about 15 x 15 x 4 mm)
MIN_DISC_MM3 = 30.0
#: a candidate farther than this from the cord centre (in the axial plane) is not a disc of this spine
MAX_DISTANCE_TO_CORD_MM = 45.0
#: candidates closer than this along the superior axis are one disc
MERGE_MM = 6.0
#: a gap longer than this many times the median gap between discs holds discs the model missed
GAP_FACTOR = 1.6
#: the level above the top disc: 2 = C2 (the top disc is C2-C3)
TOP_LEVEL = 2


def find_discs(discs: np.ndarray, cord: np.ndarray, spacing_mm: tuple[float, float, float]) -> list[float]:
    """Heights (axis-2 voxel index, fractional) of the discs along the cord, top first."""
    centres = _cord_centres(cord)
    if not centres:
        return []
    candidates = []  # (height, volume)
    for region in regionprops(label(discs > 0, connectivity=3), spacing=spacing_mm):
        if region.area < MIN_DISC_MM3:
            continue
        x, y, z = (c / s for c, s in zip(region.centroid, spacing_mm, strict=True))
        nearest = min(centres, key=lambda slice_index: abs(slice_index - z))
        cx, cy = centres[nearest]
        if np.hypot((x - cx) * spacing_mm[0], (y - cy) * spacing_mm[1]) <= MAX_DISTANCE_TO_CORD_MM:
            candidates.append((z, region.area))
    heights = _merge(sorted(candidates, reverse=True), MERGE_MM / spacing_mm[2])
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


def _cord_centres(cord: np.ndarray) -> dict[int, tuple[float, float]]:
    """The cord's centre (x, y voxel indices) on each axial slice that has cord."""
    centres = {}
    for z in np.flatnonzero(cord.any(axis=(0, 1))):
        x, y = np.nonzero(cord[:, :, z])
        centres[int(z)] = (float(x.mean()), float(y.mean()))
    return centres


def _merge(candidates: list[tuple[float, float]], distance: float) -> list[float]:
    """Volume-weighted heights of groups of candidates (sorted top first) closer than ``distance``."""
    groups: list[list[tuple[float, float]]] = []
    for height, volume in candidates:
        if groups and groups[-1][-1][0] - height < distance:
            groups[-1].append((height, volume))
        else:
            groups.append([(height, volume)])
    return [sum(h * v for h, v in group) / sum(v for _, v in group) for group in groups]


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
