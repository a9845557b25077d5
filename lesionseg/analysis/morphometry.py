"""Per-lesion morphometry on the canonical (RAS) grid, in mm, from ``skimage.measure.regionprops``.

Each lesion is measured inside its bounding box (and the cord inside the same slab), never by a pass over the
whole volume per lesion. Axis 0 points right, 1 anterior, 2 superior; "axial" means a slice of constant axis 2
and "sagittal" one of constant axis 0, the image's nearest anatomical planes (as Spinal Cord Toolbox measures
after reorienting to RPI). Definitions, and where they differ from ``sct_analyze_lesion``:
``docs/lesion-analysis.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from skimage.measure import regionprops

if TYPE_CHECKING:
    from skimage.measure._regionprops import RegionProperties

#: a lesion whose centre lies within this fraction of the cord's half-widths from the cord's centre is "central"
CENTRAL_RADIUS = 1 / 3


@dataclass(frozen=True)
class Morphometry:
    """What is measured of one lesion (mm, mm3; None where it needs a cord mask and there is none)."""

    volume_mm3: float
    length_si_mm: float
    width_ap_mm: float
    width_lr_mm: float
    max_equivalent_diameter_mm: float
    max_axial_damage_ratio: float | None
    dorsal_bridge_mm: float | None
    ventral_bridge_mm: float | None
    bridge_slice: int | None
    position: str
    side: str


def measure_lesions(labels: np.ndarray, spacing_mm: Sequence[float], cord: np.ndarray | None) -> dict[int, Morphometry]:
    """Morphometry of every lesion of a label map (0 background, 1..N lesions), keyed by label."""
    spacing = tuple(float(s) for s in spacing_mm)
    cord = None if cord is None or not np.any(cord) else np.asarray(cord) > 0
    return {region.label: _measure(region, spacing, cord) for region in regionprops(labels, spacing=spacing)}


def _measure(region: RegionProperties, spacing: tuple[float, float, float], cord: np.ndarray | None) -> Morphometry:
    box = region.slice
    lesion = region.image  # the lesion inside its bounding box
    sx, sy, sz = spacing
    axial_counts = lesion.sum(axis=(0, 1))
    diameter = 2.0 * math.sqrt(float(axial_counts.max()) * sx * sy / math.pi)
    extents = [stop - start for start, stop in ((s.start, s.stop) for s in box)]
    ratio = bridges = None
    position, side = "", ""
    if cord is not None:
        slab = cord[:, :, box[2]]
        ratio = _damage_ratio(lesion, cord[box], slab)
        bridges = tissue_bridges(region, slab, sy)
        position, side = cross_section_position(region.coords, slab, box[2].start)
    return Morphometry(
        volume_mm3=round(float(region.area), 3),
        length_si_mm=round(extents[2] * sz, 3),
        width_ap_mm=round(extents[1] * sy, 3),
        width_lr_mm=round(extents[0] * sx, 3),
        max_equivalent_diameter_mm=round(diameter, 3),
        max_axial_damage_ratio=None if ratio is None else round(ratio, 4),
        dorsal_bridge_mm=None if bridges is None or bridges[1] is None else round(bridges[1], 3),
        ventral_bridge_mm=None if bridges is None or bridges[2] is None else round(bridges[2], 3),
        bridge_slice=None if bridges is None else bridges[0],
        position=position,
        side=side,
    )


def _damage_ratio(lesion: np.ndarray, cord_box: np.ndarray, slab: np.ndarray) -> float:
    """The largest share of the cord's cross-section the lesion covers on one axial slice: lesion voxels inside
    the cord / cord voxels of that slice."""
    damaged = (lesion & cord_box).sum(axis=(0, 1))
    cord_area = slab.sum(axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(cord_area > 0, damaged / np.maximum(cord_area, 1), 0.0)
    return float(ratios.max())


def midsagittal_slice(coords: np.ndarray, slab: np.ndarray) -> int:
    """The sagittal slice (axis 0) where the bridges are measured: the cord's centre at the lesion's slices when
    the lesion reaches it, else the lesion's own central slice."""
    if slab.any():
        centre = round(float(np.argwhere(slab)[:, 0].mean()))
        if centre in coords[:, 0]:
            return centre
    return round(float(coords[:, 0].mean()))


def tissue_bridges(
    region: RegionProperties, slab: np.ndarray, sy: float
) -> tuple[int, float | None, float | None]:
    """(sagittal slice, dorsal bridge, ventral bridge): on that slice, the narrowest band of cord posterior
    (dorsal) and anterior (ventral) to the lesion over the axial rows the lesion occupies there, in mm along axis 1;
    None when the lesion is not on that slice."""
    x = midsagittal_slice(region.coords, slab)
    z0 = region.slice[2].start
    on_slice = region.coords[region.coords[:, 0] == x]
    if not len(on_slice):
        return x, None, None
    cord_plane = slab[x]  # (y, z - z0)
    dorsal, ventral = [], []
    for z in np.unique(on_slice[:, 2]):
        ys = on_slice[on_slice[:, 2] == z, 1]
        cord_column = cord_plane[:, z - z0]
        dorsal.append(int(cord_column[: ys.min()].sum()))
        ventral.append(int(cord_column[ys.max() + 1:].sum()))
    return x, min(dorsal) * sy, min(ventral) * sy


def cross_section_position(coords: np.ndarray, slab: np.ndarray, z0: int) -> tuple[str, str]:
    """Where the lesion's centre lies in the cord's cross-section at the lesion's slices: ``central`` (within
    :data:`CENTRAL_RADIUS` of the half-widths), else ``dorsal``, ``ventral`` or ``lateral`` by the larger
    normalised offset; and its side (``left``, ``right`` or ``midline``, from the lesion's centre)."""
    rows = slab[:, :, np.unique(coords[:, 2]) - z0]
    cord_voxels = np.argwhere(rows)
    if not len(cord_voxels):
        return "outside cord", ""
    centre = cord_voxels[:, :2].mean(axis=0)
    half = (cord_voxels[:, :2].max(axis=0) - cord_voxels[:, :2].min(axis=0) + 1) / 2.0
    dx, dy = (coords[:, :2].mean(axis=0) - centre) / half
    side = "midline" if abs(dx) * half[0] < 0.5 else ("right" if dx > 0 else "left")
    if math.hypot(dx, dy) < CENTRAL_RADIUS:
        return "central", side
    if abs(dy) >= abs(dx):
        return ("ventral" if dy > 0 else "dorsal"), side
    return "lateral", side
