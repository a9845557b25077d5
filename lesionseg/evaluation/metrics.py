"""Voxel-wise segmentation metrics: pure functions, arrays in, a frozen dataclass out.

Dice, Jaccard, precision (PPV), recall (sensitivity) and specificity come from MONAI (``compute_dice``,
``get_confusion_matrix``); Hausdorff 95 and the average symmetric surface distance from MONAI's surface
metrics with the voxel spacing, so they are in mm. Empty inputs have defined results, documented here and in
the README:

- Dice and Jaccard: 1 when both masks are empty, 0 when exactly one is (MONAI's ``ignore_empty=False``).
- Precision / recall / specificity: when the denominator is empty (nothing predicted / nothing to find), 1 if
  the other mask is empty too, else 0.
- Relative volume difference: ``(V_pred - V_gt) / V_gt``; 0 when both are empty, NaN when only the ground
  truth is empty (reported as null in JSON).
- HD95 and ASSD: 0 when both are empty, NaN when exactly one is.

Lesion-wise metrics are in :mod:`lesionseg.evaluation.lesionwise`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    get_confusion_matrix,
)

from lesionseg.transforms.postprocessing import count_components


@dataclass(frozen=True)
class VoxelMetrics:
    """Metrics of one predicted mask against its ground truth."""

    dice: float
    jaccard: float
    precision: float
    recall: float
    specificity: float
    hd95_mm: float
    assd_mm: float
    volume_pred_mm3: float
    volume_gt_mm3: float
    abs_volume_diff_mm3: float
    rel_volume_diff: float
    lesions_pred: int
    lesions_gt: int


def _as_batch(mask: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(mask) > 0, dtype=torch.float32)[None, None]


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice of two masks of one shape (> 0 is foreground; MONAI ``compute_dice``), 1 when both are empty."""
    return float(compute_dice(_as_batch(pred), _as_batch(gt), include_background=True, ignore_empty=False)[0, 0])


def _ratio(numerator: float, denominator: float, other_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if other_empty else 0.0
    return numerator / denominator


def surface_distances_mm(
    y_pred: torch.Tensor, y: torch.Tensor, spacing_mm: tuple[float, float, float]
) -> tuple[float, float]:
    """Symmetric Hausdorff 95 and average symmetric surface distance (mm) of two ``(1, 1, X, Y, Z)`` masks."""
    pred_empty, gt_empty = not bool(y_pred.any()), not bool(y.any())
    if pred_empty and gt_empty:
        return 0.0, 0.0
    if pred_empty or gt_empty:
        return math.nan, math.nan
    spacing = [float(s) for s in spacing_mm]
    hd95 = compute_hausdorff_distance(y_pred, y, include_background=True, percentile=95, spacing=spacing)
    assd = compute_average_surface_distance(y_pred, y, include_background=True, symmetric=True, spacing=spacing)
    return float(hd95[0, 0]), float(assd[0, 0])


def voxel_metrics(pred: np.ndarray, gt: np.ndarray, spacing_mm: tuple[float, float, float]) -> VoxelMetrics:
    """Compare a binary prediction with a binary ground truth on the same grid.

    Args:
        pred: prediction, any numeric dtype (> 0 is foreground), shape (X, Y, Z).
        gt: ground truth, same shape.
        spacing_mm: voxel size, for volumes in mm3.

    Raises:
        ValueError: when the shapes differ.
    """
    if np.shape(pred) != np.shape(gt):
        raise ValueError(f"prediction shape {np.shape(pred)} differs from ground truth shape {np.shape(gt)}")
    y_pred, y = _as_batch(pred), _as_batch(gt)
    dice_score = dice(pred, gt)
    tp, fp, tn, fn = (float(v) for v in get_confusion_matrix(y_pred, y, include_background=True)[0, 0])
    voxel_mm3 = float(np.prod(spacing_mm))
    volume_pred, volume_gt = (tp + fp) * voxel_mm3, (tp + fn) * voxel_mm3
    if volume_gt > 0:
        relative = (volume_pred - volume_gt) / volume_gt
    else:
        relative = 0.0 if volume_pred == 0 else math.nan
    hd95, assd = surface_distances_mm(y_pred, y, spacing_mm)
    return VoxelMetrics(
        dice=dice_score,
        jaccard=dice_score / (2.0 - dice_score),
        precision=_ratio(tp, tp + fp, other_empty=(tp + fn) == 0),
        recall=_ratio(tp, tp + fn, other_empty=(tp + fp) == 0),
        specificity=_ratio(tn, tn + fp, other_empty=(tn + fn) == 0),
        hd95_mm=hd95,
        assd_mm=assd,
        volume_pred_mm3=volume_pred,
        volume_gt_mm3=volume_gt,
        abs_volume_diff_mm3=abs(volume_pred - volume_gt),
        rel_volume_diff=relative,
        lesions_pred=count_components(pred),
        lesions_gt=count_components(gt),
    )
