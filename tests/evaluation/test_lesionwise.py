"""Lesion-wise rules, case by case, on hand-built volumes (1 mm isotropic unless said otherwise)."""

from __future__ import annotations

import numpy as np
import pytest

from lesionseg.evaluation.lesionwise import PRESETS, lesion_metrics

ANIMA, SIMPLE = PRESETS["anima"], PRESETS["simple"]
ISO = (1.0, 1.0, 1.0)


def _empty() -> np.ndarray:
    return np.zeros((24, 24, 24), dtype=np.uint8)


def _box(mask: np.ndarray, x: tuple[int, int], y: tuple[int, int] = (2, 6), z: tuple[int, int] = (2, 6)) -> np.ndarray:
    mask[x[0] : x[1], y[0] : y[1], z[0] : z[1]] = 1
    return mask


def test_split_lesion_is_detected_and_both_pieces_are_true() -> None:
    gt = _box(_empty(), (2, 12))
    pred = _box(_box(_empty(), (2, 6)), (8, 12))
    m = lesion_metrics(pred, gt, ISO, ANIMA)
    assert (m.n_gt, m.n_pred, m.tp_gt, m.tp_pred, m.fp_pred) == (1, 2, 1, 2, 0)
    assert m.sensitivity == 1.0 and m.ppv == 1.0 and m.f1 == 1.0


def test_merged_lesions_are_both_detected_by_one_prediction() -> None:
    gt = _box(_box(_empty(), (2, 6)), (8, 12))
    pred = _box(_empty(), (2, 12))
    m = lesion_metrics(pred, gt, ISO, ANIMA)
    assert (m.n_gt, m.n_pred, m.tp_gt, m.tp_pred) == (2, 1, 2, 1)


def test_lesion_leaking_into_background_is_not_a_detection_under_anima() -> None:
    gt = _box(_empty(), (2, 6))  # 64 voxels
    pred = _box(_empty(), (2, 22))  # 320 voxels, 80% outside the ground truth (> beta 70%)
    anima = lesion_metrics(pred, gt, ISO, ANIMA)
    assert anima.tp_gt == 0 and anima.sensitivity == 0.0
    assert anima.tp_pred == 1  # the ground truth lesion lies wholly inside it: with roles swapped it passes
    simple = lesion_metrics(pred, gt, ISO, SIMPLE)
    assert simple.tp_gt == 1 and simple.tp_pred == 1


def test_leak_at_the_beta_limit_is_still_a_detection() -> None:
    gt = _box(_empty(), (2, 8), y=(2, 7), z=(2, 7))  # 6 x 5 x 5 = 150 voxels
    pred = _box(_empty(), (2, 22), y=(2, 7), z=(2, 7))  # 500 voxels, 350 outside: exactly 70%
    assert lesion_metrics(pred, gt, ISO, ANIMA).tp_gt == 1


@pytest.mark.parametrize("covered, detected", [(10, False), (11, True)])
def test_alpha_needs_strictly_more_than_ten_percent(covered: int, detected: bool) -> None:
    gt = _empty()
    gt[2:12, 2:12, 2] = 1  # 100 voxels, one slice
    pred = _empty()
    pred.reshape(-1)[np.flatnonzero(gt.reshape(-1))[:covered]] = 1  # inside the lesion only
    assert lesion_metrics(pred, gt, ISO, ANIMA).tp_gt == int(detected)


def test_gamma_stops_before_a_small_leaking_component() -> None:
    gt = _box(_empty(), (2, 12))  # 160 voxels
    big = _box(_empty(), (2, 10))  # 128 voxels inside
    small_leak = _empty()
    small_leak[10:12, 2:3, 2:3] = 1  # 2 voxels inside the lesion ...
    small_leak[12:22, 2:3, 2:3] = 1  # ... and 10 outside (83% outside)
    pred = np.maximum(big, small_leak)
    pred[10, 2:3, 2:3] = 0  # keep the two components apart along x
    m = lesion_metrics(pred, gt, ISO, ANIMA)
    assert m.n_pred == 2 and m.tp_gt == 1  # the big one alone covers more than 65% of the overlap


def test_leaking_component_with_the_largest_overlap_prevents_detection() -> None:
    gt = _box(_empty(), (2, 12))  # 160 voxels
    pred = _box(_empty(), (2, 5))  # 48 voxels inside
    pred[7:23, 2:6, 2:6] = 1  # 256 voxels: 80 inside (5 x 4 x 4), 176 outside (69%), then more outside
    pred[16:23, 6:9, 2:6] = 1  # pushes it past 70% outside
    m = lesion_metrics(pred, gt, ISO, ANIMA)
    assert m.n_pred == 2 and m.tp_gt == 0


def test_tiny_lesion_at_the_size_limit() -> None:
    three = _empty()
    three[5, 5, 5:8] = 1  # 3 mm3: dropped under anima (must be strictly larger)
    four = _empty()
    four[5, 5, 5:9] = 1  # 4 mm3: kept
    assert lesion_metrics(_empty(), three, ISO, ANIMA).n_gt == 0
    assert lesion_metrics(_empty(), four, ISO, ANIMA).n_gt == 1
    assert lesion_metrics(_empty(), three, ISO, SIMPLE).n_gt == 1
    assert lesion_metrics(_empty(), three, (1.0, 1.0, 2.0), ANIMA).n_gt == 1  # 6 mm3 with 2 mm slices


def test_connectivity_of_each_preset() -> None:
    gt = _empty()
    gt[2:5, 2:5, 2:5] = 1
    gt[5:8, 5:8, 5:8] = 1  # touches the first cube by a corner only
    assert lesion_metrics(gt, gt, ISO, ANIMA).n_gt == 2
    assert lesion_metrics(gt, gt, ISO, SIMPLE).n_gt == 1


def test_empty_ground_truth() -> None:
    m = lesion_metrics(_box(_empty(), (2, 6)), _empty(), ISO, ANIMA)
    assert (m.n_gt, m.n_pred, m.fp_pred) == (0, 1, 1)
    assert m.sensitivity == 0.0 and m.ppv == 0.0 and m.f1 == 0.0


def test_empty_prediction() -> None:
    m = lesion_metrics(_empty(), _box(_empty(), (2, 6)), ISO, ANIMA)
    assert (m.n_gt, m.fn_gt, m.sensitivity, m.ppv, m.f1) == (1, 1, 0.0, 0.0, 0.0)


def test_both_empty() -> None:
    m = lesion_metrics(_empty(), _empty(), ISO, ANIMA)
    assert (m.sensitivity, m.ppv, m.f1) == (1.0, 1.0, 1.0)


def test_simple_min_overlap_and_false_positive() -> None:
    gt = _box(_empty(), (2, 6))
    pred = _empty()
    pred[5, 5, 5] = 1  # one voxel inside the lesion
    pred[15:18, 15:18, 15:18] = 1  # far away: a false positive
    assert lesion_metrics(pred, gt, ISO, SIMPLE).tp_gt == 1
    strict = SIMPLE.with_changes(min_overlap_voxels=2)
    m = lesion_metrics(pred, gt, ISO, strict)
    assert m.rules == "custom" and m.tp_gt == 0 and m.fp_pred == 2
