"""Lesions implanted into real scans: phantoms built on real anatomy.

Given a real scan and its cord mask, ellipsoidal lesions (elongated along the cord's long axis, clipped to the
cord) are painted in by scaling the local intensity, with partial volume at the edges: the anatomy, contrast,
noise and artefacts stay those of the real scan. Used to measure lesion detection on real anatomy, for which
no labelled MS spinal-cord scan is public.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ImplantedScan:
    """A real scan with implanted lesions: the new image (same dtype and grid) and the lesion mask."""

    image: np.ndarray
    lesion: np.ndarray
    count: int


def implant_lesions(
    image: np.ndarray,
    cord: np.ndarray,
    spacing_mm: tuple[float, float, float],
    rng: np.random.Generator,
    *,
    intensity_factor: float,
    count: int = 3,
    length_mm: tuple[float, float] = (5.0, 12.0),
) -> ImplantedScan:
    """Paint ``count`` lesions into the cord of ``image`` (any grid; the cord's long axis is the mask's longest
    extent in mm). Voxel intensities inside a lesion are multiplied by ``intensity_factor`` (e.g. 1.6 on T2w,
    0.8 on T1w) in proportion to the voxel's lesion fraction (sub-voxel sampling).

    Returns:
        The image in its own dtype, the uint8 lesion mask (voxels at least half lesion) and the lesions painted.
    """
    cord = cord > 0
    spacing = np.asarray(spacing_mm, dtype=float)
    points = np.argwhere(cord)
    if len(points) == 0:
        raise ValueError("empty cord mask")
    extent_mm = (points.max(axis=0) - points.min(axis=0) + 1) * spacing
    axis = int(np.argmax(extent_mm))
    fraction = np.zeros(image.shape, dtype=np.float32)
    # centres on distinct levels along the long axis, away from its ends
    levels = np.unique(points[:, axis])
    inner = levels[len(levels) // 8 : len(levels) - len(levels) // 8] if len(levels) >= 8 else levels
    chosen = rng.choice(inner, size=min(count, len(inner)), replace=False)
    sub = 3  # sub-samples per axis for partial volume
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    painted = 0
    for level in chosen:
        at_level = points[points[:, axis] == level]
        centre = at_level.mean(axis=0)
        half_length = rng.uniform(*length_mm) / 2
        radius_mm = rng.uniform(1.5, 3.0)
        semi = np.full(3, radius_mm)
        semi[axis] = half_length
        reach = np.ceil(semi / spacing).astype(int) + 1
        low = np.maximum(np.floor(centre).astype(int) - reach, 0)
        high = np.minimum(np.ceil(centre).astype(int) + reach + 1, image.shape)
        grids = np.meshgrid(*[np.arange(lo, hi) for lo, hi in zip(low, high, strict=True)], indexing="ij")
        covered = np.zeros(grids[0].shape, dtype=np.float32)
        for dx in offsets:
            for dy in offsets:
                for dz in offsets:
                    d = [(g + o - c) * s / r for g, o, c, s, r in zip(grids, (dx, dy, dz), centre, spacing, semi, strict=True)]
                    covered += (d[0] ** 2 + d[1] ** 2 + d[2] ** 2 <= 1.0)
        region = tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))
        fraction[region] = np.maximum(fraction[region], covered / sub**3)
        painted += 1
    fraction *= cord  # clipped to the cord
    scaled = image.astype(np.float64) * (1.0 + (intensity_factor - 1.0) * fraction)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        scaled = np.clip(np.rint(scaled), info.min, info.max)
    lesion = (fraction >= 0.5).astype(np.uint8)
    return ImplantedScan(image=scaled.astype(image.dtype), lesion=lesion, count=painted)
