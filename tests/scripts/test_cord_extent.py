"""scripts/cord_extent.py: where a predicted cord differs from a reference, above, below and within its extent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from scipy import ndimage

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cord_extent.py"
spec = importlib.util.spec_from_file_location("cord_extent", SCRIPT)
cord_extent = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cord_extent)


def test_breakdown_splits_the_extra_voxels_along_the_cord() -> None:
    reference = np.zeros((20, 20, 30), dtype=bool)
    reference[8:12, 8:12, 10:20] = True  # 4 x 4 voxels on slices 10..19
    predicted = reference.copy()
    predicted[8:12, 8:12, 5:10] = True  # 5 slices below: 80 voxels
    predicted[8:12, 8:12, 20:22] = True  # 2 slices above: 32 voxels
    predicted[..., 12] = ndimage.binary_dilation(reference[..., 12])  # a voxel wider (a cross): 16 more
    predicted[8, 8, 15] = False  # one missed voxel
    result = cord_extent.breakdown(predicted, reference)
    assert result["reference_slices"] == [10, 19] and result["predicted_slices"] == [5, 21]
    assert (result["extra_below"], result["extra_above"], result["extra_within"], result["missed"]) == (80, 32, 16, 1)
    assert result["volume_ratio"] == round((160 + 80 + 32 + 16 - 1) / 160, 3)
    overlap = 159
    assert result["dice"] == round(2 * overlap / (predicted.sum() + reference.sum()), 4)
    assert result["dice_within_extent"] == round(2 * overlap / (159 + 16 + 160), 4)
