"""Vertebral levels from two segmentations along the cord: the intervertebral discs (the disc model) and C2, body
and dens (the C2 model), the anchor that names them.

On every axial slice with cord, each probability is averaged over a box in front of the cord (near the midline,
:data:`DISC_BOX_MM`): along the cord the disc profile peaks at each disc, even where the model's discs and vertebral
bodies run together into one blob. Peaks closer than :data:`MIN_GAP_MM` are one disc; a gap much longer than the
others (a disc the model missed) gets the missing discs back, evenly spaced. The discs split the cord into
vertebrae; C2 is the vertebra whose box holds the most C2 on average (:data:`C2_PRESENT` at least), the disc below
it is C2-C3 (the anchor Spinal Cord Toolbox's ``sct_label_vertebrae`` uses too), the discs below it C3-C4, C4-C5
and so on. The disc model's peak above C2, where there is one, is the atlanto-axial joint (SCT's C1-C2 label):
the cord above it is C1; peaks higher up (C1's arch, the clivus look like discs) are not named. Every axial slice
takes the level of the vertebra it lies in. Without C2 in the field of view (a thoracic or lumbar scan, or a crop
below C2) nothing is named: counting from another disc would name every level wrongly.

Arrays are on the canonical (RAS) grid: axis 2 points superior.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from scipy.ndimage import gaussian_filter1d

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
#: C2 is in view when the vertebra that holds most C2 has at least this share of its box C2 on average (C2's body
#: fills about a quarter of the box)
C2_PRESENT = 0.05


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
    from scipy.signal import find_peaks  # 0.9 s to import: only a cascade with a disc stage pays it

    profile = gaussian_filter1d(disc_profile(probabilities, cord, spacing_mm), sigma=1.0 / spacing_mm[2])
    peaks, _ = find_peaks(profile, distance=max(1.0, MIN_GAP_MM / spacing_mm[2]), prominence=MIN_PROMINENCE)
    heights = [_refined(profile, int(peak)) for peak in peaks[::-1]]
    return _fill_gaps(heights)


def find_c2(heights: list[float], c2: np.ndarray, cord: np.ndarray, spacing_mm: tuple[float, float, float]) -> int | None:
    """Which vertebra is C2: the index in ``heights`` (top first) of the disc below the vertebra whose box holds the
    most C2 on average (0: the vertebra above the top disc); None when none reaches :data:`C2_PRESENT` or there is
    no disc."""
    if not heights:
        return None
    profile = disc_profile(c2, cord, spacing_mm)
    rows = np.flatnonzero(cord.any(axis=(0, 1)))
    edges = [rows.max() + 0.5, *heights]
    spans = [profile[int(np.ceil(bottom)) : int(np.floor(top)) + 1] for top, bottom in pairwise(edges)]
    scores = [float(span.mean()) if span.size else 0.0 for span in spans]
    best = int(np.argmax(scores))
    return best if scores[best] >= C2_PRESENT else None


def vertebral_levels(discs: np.ndarray, c2: np.ndarray, cord: np.ndarray, spacing_mm: tuple[float, float, float],
                     labelled: np.ndarray | None = None) -> tuple[list[float], np.ndarray]:
    """The discs from C2-C3 down and the voxels of ``labelled`` (default: the cord) labelled with their level, from
    the disc and C2 segmentations (masks or probabilities) in front of the cord; the disc above C2, when there is
    one, is C1-C2 (the atlanto-axial joint): C1 above it. No disc and zeros when C2 is not found."""
    labelled = cord if labelled is None else labelled
    heights = find_discs(discs, cord, spacing_mm)
    below = find_c2(heights, c2, cord, spacing_mm)
    if below is None:
        return [], np.zeros(labelled.shape, dtype=np.int32)
    c1_above = heights[below - 1] if below > 0 else None
    return heights[below:], level_map_from_discs(heights[below:], labelled, c1_above=c1_above)


def level_map_from_discs(heights: list[float], cord: np.ndarray, top_level: int = TOP_LEVEL,
                         c1_above: float | None = None) -> np.ndarray:
    """The cord's voxels labelled with the level of their slice (``top_level`` above the top disc, one more below
    each disc, 1 = C1 above ``c1_above`` when given); zeros when there is no disc."""
    levels = np.zeros(cord.shape, dtype=np.int32)
    if not heights:
        return levels
    slices = np.arange(cord.shape[2])
    per_slice = top_level + (np.asarray(heights)[None, :] > slices[:, None]).sum(axis=1)
    if c1_above is not None:
        per_slice[slices > c1_above] = 1
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
