"""The lesion table of a prediction: one row per lesion (connected component), head to foot, totals per image
and per vertebral level, and the labelled lesion mask whose values are the rows' ``lesion_id``.

Per lesion: id, volume (mm3), centroid in scanner coordinates (RAS and LPS, mm), extent along the cord (mm; the
cord direction is the principal axis of the cord mask, the superior axis without one), the morphometry of
:mod:`lesionseg.analysis.morphometry`, maximum probability, and the vertebral level, nearest disc and distance to
it when a level map is given. Definitions: ``docs/lesion-analysis.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from lesionseg.analysis.levels import SliceLevels, level_name, slice_levels
from lesionseg.analysis.morphometry import Morphometry, measure_lesions
from lesionseg.transforms.postprocessing import label_components


@dataclass(frozen=True)
class LesionRow(Morphometry):
    """One lesion: the morphometry of :mod:`lesionseg.analysis.morphometry`, where it is and its level."""

    lesion_id: int
    centroid_ras_mm: tuple[float, float, float]
    centroid_lps_mm: tuple[float, float, float]
    extent_along_cord_mm: float
    max_probability: float
    vertebral_level: str
    level_shares: str
    nearest_disc: str
    distance_to_disc_mm: float | None


#: the columns of the lesion table, in order
ROW_FIELDS = ("lesion_id", "vertebral_level", "level_shares", "volume_mm3", "centroid_ras_mm", "centroid_lps_mm",
              "extent_along_cord_mm", "length_si_mm", "width_ap_mm", "width_lr_mm", "max_equivalent_diameter_mm",
              "max_axial_damage_ratio", "dorsal_bridge_mm", "ventral_bridge_mm", "bridge_slice", "position", "side",
              "nearest_disc", "distance_to_disc_mm", "max_probability")


@dataclass(frozen=True)
class LevelRow:
    """The lesions of one vertebral level: how many have it as their level, and the lesion volume on its slices."""

    vertebral_level: str
    lesions: int
    volume_mm3: float


@dataclass(frozen=True, eq=False)
class LesionTable:
    """All lesions of one image (head to foot), their totals, per-level totals and the labelled mask."""

    lesions: tuple[LesionRow, ...]
    connectivity: int
    min_volume_mm3: float
    #: canonical grid, values = ``lesion_id`` (uint16; lesions of ``min_volume_mm3`` or less are 0)
    labels: np.ndarray | None = None
    per_level: tuple[LevelRow, ...] = ()
    #: where the levels came from: "level map" (the user's), or "" (none)
    level_source: str = ""
    #: the level of each axial slice and the discs, when there are levels
    slice_levels: SliceLevels | None = None

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


def _ordered_labels(mask: np.ndarray, affine: np.ndarray, connectivity: int, min_volume_mm3: float) -> np.ndarray:
    """Connected components of ``mask`` larger than ``min_volume_mm3``, numbered 1..N head to foot (by the
    superior world coordinate of their centroids), as uint16."""
    labels, count = label_components(mask, connectivity=connectivity)
    if count == 0:
        return labels.astype(np.uint16)
    index = np.arange(1, count + 1)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:] * voxel_mm3
    centroids = np.asarray(ndimage.center_of_mass(labels > 0, labels, index)).reshape(-1, 3)
    superior = _world(centroids, affine)[:, 2]
    kept = [i for i in np.argsort(-superior, kind="stable") if sizes[i] > min_volume_mm3]
    lookup = np.zeros(count + 1, dtype=np.uint16)
    lookup[np.asarray(kept, dtype=int) + 1] = np.arange(1, len(kept) + 1)
    return lookup[labels]


def _levels_of(labels: np.ndarray, count: int, levels: SliceLevels,
               voxel_mm3: float) -> tuple[list[tuple[int, str]], tuple[LevelRow, ...]]:
    """Each lesion's level (the most frequent level of its voxels' axial slices) and its shares of the levels, and
    the per-level table."""
    ids = labels[labels > 0].astype(np.int64)
    slice_level = levels.at(np.nonzero(labels)[2])
    size = int(max(levels.per_slice.max(), slice_level.max(initial=0))) + 1
    pairs = np.zeros((count + 1, size), dtype=np.int64)
    np.add.at(pairs, (ids, slice_level), 1)
    sizes = pairs.sum(axis=1)
    pairs[:, 0] = 0
    per_lesion = [(int(pairs[i].argmax()) if pairs[i].any() else 0, _shares(pairs[i], sizes[i]))
                  for i in range(1, count + 1)]
    volume = pairs.sum(axis=0) * voxel_mm3
    main = [level for level, _ in per_lesion]
    rows = tuple(
        LevelRow(level_name(value), main.count(value), round(float(volume[value]), 3))
        for value in range(1, size) if volume[value] > 0 or value in main
    )
    return per_lesion, rows


def _shares(on_level: np.ndarray, size: int) -> str:
    """``"C3 62%, C4 38%"``: the share of a lesion's voxels on each level's slices, head to foot (the voxels
    outside the levels' extent count in the whole, so the shares then add up to less than 100%)."""
    return ", ".join(f"{level_name(int(value))} {round(100 * on_level[value] / size)}%"
                     for value in np.flatnonzero(on_level))


def _nearest_disc(z: float, levels: SliceLevels | None, slice_mm: float) -> tuple[str, float | None]:
    """The disc nearest an axial position and the signed distance to it (mm along the superior axis, positive
    when the position is above the disc)."""
    if levels is None or not levels.discs:
        return "", None
    disc = min(levels.discs, key=lambda d: abs(z - d.z))
    return disc.name, round(float((z - disc.z) * slice_mm), 2)


def lesion_table(
    mask: np.ndarray,
    affine: np.ndarray,
    *,
    probabilities: np.ndarray | None = None,
    cord: np.ndarray | None = None,
    levels: np.ndarray | None = None,
    connectivity: int = 26,
    min_volume_mm3: float = 0.0,
    level_source: str = "level map",
) -> LesionTable:
    """Describe every lesion of a binary mask, head to foot.

    Args:
        mask: binary lesion mask on the canonical (RAS) grid, shape (X, Y, Z).
        affine: voxel-to-world (RAS mm) affine of that grid.
        probabilities: same grid, for the maximum probability per lesion.
        cord: same grid; the direction of the extent along the cord, and the morphometry that needs the cord
            (damage ratio, tissue bridges, position in the cross-section).
        levels: same grid, integer vertebral levels (0 outside, 1 = C1 ... 25 = S1); each axial slice takes the
            most frequent level on it, a lesion the most frequent level of its voxels' slices.
        connectivity: 6, 18 or 26.
        min_volume_mm3: lesions of this volume or less are left out.
        level_source: where ``levels`` came from, in words (the table's ``level_source``).
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    labels = _ordered_labels(mask, affine, connectivity, min_volume_mm3)
    count = int(labels.max(initial=0))
    index = np.arange(1, count + 1)
    morphometry = measure_lesions(labels, spacing, cord)
    slices = slice_levels(levels) if levels is not None and np.any(levels) else None
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    level_values, per_level = _levels_of(labels, count, slices, voxel_mm3) if slices else ([(0, "")] * count, ())
    maxima = ndimage.maximum(probabilities, labels, index) if probabilities is not None and count else np.ones(count)
    centroids = np.asarray(ndimage.center_of_mass(labels > 0, labels, index)).reshape(-1, 3)
    axis = cord_axis(cord, affine)
    boxes = ndimage.find_objects(labels)
    rows = tuple(
        _row(lesion_id, morphometry[lesion_id], centroids[lesion_id - 1], affine, float(maxima[lesion_id - 1]),
             level_values[lesion_id - 1], _nearest_disc(centroids[lesion_id - 1][2], slices, spacing[2]),
             _extent_along(labels, lesion_id, boxes[lesion_id - 1], affine, axis))
        for lesion_id in index
    )
    return LesionTable(lesions=rows, connectivity=connectivity, min_volume_mm3=min_volume_mm3, labels=labels,
                       per_level=per_level, level_source=level_source if slices else "", slice_levels=slices)


def _extent_along(labels: np.ndarray, lesion_id: int, box: tuple[slice, ...], affine: np.ndarray,
                  axis: np.ndarray) -> float:
    """Extent of the lesion's voxel centres along ``axis`` (world), plus one voxel's size along it (mm)."""
    voxels = np.argwhere(labels[box] == lesion_id) + np.array([s.start for s in box])
    along = _world(voxels.astype(float), affine) @ axis
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return round(float(along.max() - along.min() + np.abs(axis * spacing).max()), 2)


def _row(lesion_id: int, measured: Morphometry, centroid: np.ndarray, affine: np.ndarray, maximum: float,
         level: tuple[int, str], disc: tuple[str, float | None], extent: float) -> LesionRow:
    world = _world(centroid[None, :], affine)[0]
    return LesionRow(
        **asdict(measured),
        lesion_id=int(lesion_id),
        centroid_ras_mm=tuple(round(float(v), 2) for v in world),  # type: ignore[arg-type]
        centroid_lps_mm=tuple(round(float(v), 2) for v in world * np.array([-1, -1, 1])),  # type: ignore[arg-type]
        extent_along_cord_mm=extent,
        max_probability=round(maximum, 4),
        vertebral_level=level_name(level[0]),
        level_shares=level[1],
        nearest_disc=disc[0],
        distance_to_disc_mm=disc[1],
    )
