"""Postprocessing of binary masks shared by inference and evaluation."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

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
    labels, count = ndimage.label(np.asarray(mask) > 0, structure=structure)
    return labels.astype(np.int32, copy=False), int(count)


def count_components(mask: np.ndarray, *, connectivity: int = 26) -> int:
    """Number of connected components of a binary 3D mask."""
    return label_components(mask, connectivity=connectivity)[1]
