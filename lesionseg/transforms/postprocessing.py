"""Postprocessing of binary masks shared by inference and evaluation."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lesionseg.transforms.cropping import bounding_box, box_slices

_CONNECTIVITY_RANK = {6: 1, 18: 2, 26: 3}


def label_components(mask: np.ndarray, *, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Label the connected components of a binary 3D mask.

    Args:
        mask: array whose values > 0 are foreground.
        connectivity: 6 (faces), 18 (faces and edges) or 26 (faces, edges and corners).

    Returns:
        An int32 label array (0 background, 1..N components) and N.

    Raises:
        ValueError: for a connectivity other than 6, 18 or 26.
    """
    if connectivity not in _CONNECTIVITY_RANK:
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    structure = ndimage.generate_binary_structure(3, _CONNECTIVITY_RANK[connectivity])
    foreground = np.asarray(mask) > 0
    labels = np.zeros(foreground.shape, dtype=np.int32)
    box = bounding_box(foreground)
    if box is None:
        return labels, 0
    # labelled within the foreground's bounding box only: a whole-neck mask is a few thousand voxels of millions
    region = box_slices(box)
    labels[region], count = ndimage.label(foreground[region], structure=structure)
    return labels, int(count)


def count_components(mask: np.ndarray, *, connectivity: int = 26) -> int:
    """Number of connected components of a binary 3D mask."""
    return label_components(mask, connectivity=connectivity)[1]


def keep_largest_component(mask: np.ndarray, *, connectivity: int = 26) -> np.ndarray:
    """The largest connected component of a binary mask (uint8); an empty mask stays empty."""
    labels, count = label_components(mask, connectivity=connectivity)
    if count <= 1:
        return (labels > 0).astype(np.uint8)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return (labels == int(sizes.argmax())).astype(np.uint8)


def dilate_mm(mask: np.ndarray, spacing_mm: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """Voxels within ``radius_mm`` (Euclidean, physical spacing) of the mask, as uint8."""
    mask = np.asarray(mask) > 0
    if radius_mm <= 0 or not mask.any():
        return mask.astype(np.uint8)
    distance = ndimage.distance_transform_edt(~mask, sampling=spacing_mm)
    return (distance <= radius_mm).astype(np.uint8)
