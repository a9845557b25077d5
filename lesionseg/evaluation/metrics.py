"""Voxel-wise segmentation metrics: pure functions, arrays in, a frozen dataclass out.

Dice, precision and recall come from MONAI (``compute_dice``, ``get_confusion_matrix``). Empty inputs have
defined results, documented here and in the README:

- Dice: 1 when both masks are empty, 0 when exactly one is (MONAI's ``ignore_empty=False``).
- Precision / recall: when the denominator is empty (nothing predicted / nothing to find), 1 if the other
  mask is empty too, else 0.
- Relative volume difference: ``(V_pred - V_gt) / V_gt``; 0 when both are empty, NaN when only the ground
  truth is empty (reported as null in JSON).

Lesion-wise and surface-distance metrics slot in beside :func:`voxel_metrics` as further pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from monai.metrics import compute_dice, get_confusion_matrix

from lesionseg.transforms.postprocessing import count_components


@dataclass(frozen=True)
class VoxelMetrics:
    """Metrics of one predicted mask against its ground truth."""

    dice: float
    precision: float
    recall: float
    volume_pred_mm3: float
    volume_gt_mm3: float
    abs_volume_diff_mm3: float
    rel_volume_diff: float
    lesions_pred: int
    lesions_gt: int


def _as_batch(mask: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(mask) > 0, dtype=torch.float32)[None, None]


def _ratio(numerator: float, denominator: float, other_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if other_empty else 0.0
    return numerator / denominator


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
    dice = float(compute_dice(y_pred, y, include_background=True, ignore_empty=False)[0, 0])
    tp, fp, tn, fn = (float(v) for v in get_confusion_matrix(y_pred, y, include_background=True)[0, 0])
    voxel_mm3 = float(np.prod(spacing_mm))
    volume_pred, volume_gt = (tp + fp) * voxel_mm3, (tp + fn) * voxel_mm3
    if volume_gt > 0:
        relative = (volume_pred - volume_gt) / volume_gt
    else:
        relative = 0.0 if volume_pred == 0 else math.nan
    return VoxelMetrics(
        dice=dice,
        precision=_ratio(tp, tp + fp, other_empty=(tp + fn) == 0),
        recall=_ratio(tp, tp + fn, other_empty=(tp + fp) == 0),
        volume_pred_mm3=volume_pred,
        volume_gt_mm3=volume_gt,
        abs_volume_diff_mm3=abs(volume_pred - volume_gt),
        rel_volume_diff=relative,
        lesions_pred=count_components(pred),
        lesions_gt=count_components(gt),
    )
