"""Voxel metrics: values on hand-built masks and the documented rules for empty inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesionseg.evaluation.metrics import voxel_metrics
from lesionseg.transforms.postprocessing import count_components, label_components


def _mask(*boxes: tuple[slice, slice, slice]) -> np.ndarray:
    mask = np.zeros((10, 10, 10), dtype=np.uint8)
    for box in boxes:
        mask[box] = 1
    return mask


def test_partial_overlap_values() -> None:
    gt = _mask((slice(0, 4), slice(0, 5), slice(0, 5)))  # 100 voxels
    pred = _mask((slice(2, 6), slice(0, 5), slice(0, 5)))  # 100 voxels, 50 shared
    m = voxel_metrics(pred, gt, (1.0, 1.0, 2.0))
    assert m.dice == pytest.approx(0.5)
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(0.5)
    assert m.volume_pred_mm3 == pytest.approx(200.0) and m.volume_gt_mm3 == pytest.approx(200.0)
    assert m.abs_volume_diff_mm3 == 0 and m.rel_volume_diff == 0
    assert m.lesions_pred == 1 and m.lesions_gt == 1


def test_both_empty_is_a_perfect_score() -> None:
    empty = _mask()
    m = voxel_metrics(empty, empty, (1.0, 1.0, 1.0))
    assert (m.dice, m.precision, m.recall, m.rel_volume_diff) == (1.0, 1.0, 1.0, 0.0)


def test_prediction_on_empty_ground_truth() -> None:
    m = voxel_metrics(_mask((slice(0, 2), slice(0, 2), slice(0, 2))), _mask(), (1.0, 1.0, 1.0))
    assert m.dice == 0.0 and m.precision == 0.0 and m.recall == 0.0  # rule: empty denominator, other mask not empty
    assert math.isnan(m.rel_volume_diff)


def test_missed_lesions() -> None:
    m = voxel_metrics(_mask(), _mask((slice(0, 2), slice(0, 2), slice(0, 2))), (1.0, 1.0, 1.0))
    assert m.dice == 0.0 and m.precision == 0.0 and m.recall == 0.0 and m.rel_volume_diff == -1.0


def test_lesion_counts_and_connectivity() -> None:
    mask = _mask((slice(0, 2), slice(0, 2), slice(0, 2)), (slice(5, 7), slice(5, 7), slice(5, 7)))
    mask[2, 2, 2] = 1  # touches the first box by a corner only
    assert count_components(mask, connectivity=26) == 2
    assert count_components(mask, connectivity=6) == 3
    labels, count = label_components(mask, connectivity=6)
    assert labels.max() == count == 3
    with pytest.raises(ValueError, match="connectivity"):
        count_components(mask, connectivity=8)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differs"):
        voxel_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), (1.0, 1.0, 1.0))
