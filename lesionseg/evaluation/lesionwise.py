"""Lesion-wise detection metrics with explicit rules and named presets.

A lesion is a connected component of a binary mask. Two presets:

``anima`` (MSSEG 2016 / MSSEG-2, animaSegPerfAnalyzer defaults)
    6-connectivity; components of ``min_volume_mm3`` = 3 mm3 or less are dropped (a lesion must be strictly
    larger), from both masks. A ground-truth lesion ``L`` is detected when

    1. more than ``alpha`` = 10% of ``L`` is covered by the prediction, and
    2. taking the predicted lesions that touch ``L`` from the largest overlap down until they account for
       ``gamma`` = 65% of the overlapped voxels, none of them has more than ``beta`` = 70% of its voxels
       outside the ground-truth mask (all ground-truth lesions together).

    The same test with the roles swapped decides which predicted lesions are true positives.

``simple``
    26-connectivity, no size limit; a ground-truth lesion is detected when at least ``min_overlap_voxels``
    (default 1) of its voxels are predicted; a predicted lesion is a true positive when it overlaps the ground
    truth by at least that many voxels, and a false positive otherwise.

Lesion sensitivity = TP_gt / N_gt, lesion PPV = TP_pred / N_pred, lesion F1 = their harmonic mean. With an
empty denominator a ratio is 1 when the other mask has no lesion either, else 0 (as for voxel metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from lesionseg.transforms.postprocessing import label_components


@dataclass(frozen=True)
class LesionRules:
    """How lesions are found and when one counts as detected."""

    name: str
    mode: Literal["anima", "simple"]
    connectivity: int = 6
    min_volume_mm3: float = 0.0
    alpha: float = 0.10
    beta: float = 0.70
    gamma: float = 0.65
    min_overlap_voxels: int = 1

    def with_changes(self, **changes: float | int | str) -> LesionRules:
        """A copy with some rules changed (named ``custom`` unless a name is given)."""
        return replace(self, name=str(changes.pop("name", "custom")), **changes)  # type: ignore[arg-type]


PRESETS: dict[str, LesionRules] = {
    "anima": LesionRules(name="anima", mode="anima", connectivity=6, min_volume_mm3=3.0, alpha=0.10, beta=0.70, gamma=0.65),
    "simple": LesionRules(name="simple", mode="simple", connectivity=26, min_volume_mm3=0.0, min_overlap_voxels=1),
}


@dataclass(frozen=True)
class LesionMetrics:
    """Lesion-wise counts and rates of one image under one set of rules."""

    rules: str
    n_gt: int
    n_pred: int
    tp_gt: int
    tp_pred: int
    fn_gt: int
    fp_pred: int
    sensitivity: float
    ppv: float
    f1: float


def lesion_labels(mask: np.ndarray, spacing_mm: tuple[float, float, float], rules: LesionRules) -> tuple[np.ndarray, int]:
    """Components of ``mask`` under ``rules``, relabelled 1..N after dropping those of ``min_volume_mm3`` or less."""
    labels, count = label_components(mask, connectivity=rules.connectivity)
    if count == 0 or rules.min_volume_mm3 <= 0:
        return labels, count
    voxel_mm3 = float(np.prod(spacing_mm))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes * voxel_mm3 > rules.min_volume_mm3
    keep[0] = False
    new_ids = np.zeros(count + 1, dtype=np.int32)
    new_ids[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return new_ids[labels], int(keep.sum())


def _overlaps(a: np.ndarray, n_a: int, b: np.ndarray, n_b: int) -> np.ndarray:
    """``(n_a + 1, n_b + 1)`` voxel counts of every pair of labels (row/column 0: background)."""
    pairs = a.astype(np.int64).ravel() * (n_b + 1) + b.astype(np.int64).ravel()
    return np.bincount(pairs, minlength=(n_a + 1) * (n_b + 1)).reshape(n_a + 1, n_b + 1)


def _detected_anima(overlap: np.ndarray, rules: LesionRules) -> int:
    """Count detected lesions of the row mask given the column mask (overlap from :func:`_overlaps`)."""
    sizes_a = overlap.sum(axis=1)
    sizes_b = overlap.sum(axis=0)
    outside_b = overlap[0, :]  # voxels of each column lesion outside every row lesion
    detected = 0
    for i in range(1, overlap.shape[0]):
        touching = overlap[i, 1:]
        covered = int(touching.sum())
        if sizes_a[i] == 0 or covered / sizes_a[i] <= rules.alpha:
            continue
        order = np.argsort(-touching, kind="stable")
        cumulative, ok = 0, True
        for j in order:
            if touching[j] == 0:
                break
            if outside_b[j + 1] / sizes_b[j + 1] > rules.beta:
                ok = False
                break
            cumulative += int(touching[j])
            if cumulative >= rules.gamma * covered:
                break
        detected += int(ok)
    return detected


def _ratio(numerator: int, denominator: int, other_count: int) -> float:
    if denominator == 0:
        return 1.0 if other_count == 0 else 0.0
    return numerator / denominator


def lesion_metrics(
    pred: np.ndarray, gt: np.ndarray, spacing_mm: tuple[float, float, float], rules: LesionRules = PRESETS["anima"]
) -> LesionMetrics:
    """Lesion-wise detection of ``pred`` against ``gt`` (same grid) under ``rules``.

    Raises:
        ValueError: when the shapes differ.
    """
    if np.shape(pred) != np.shape(gt):
        raise ValueError(f"prediction shape {np.shape(pred)} differs from ground truth shape {np.shape(gt)}")
    gt_labels, n_gt = lesion_labels(gt, spacing_mm, rules)
    pred_labels, n_pred = lesion_labels(pred, spacing_mm, rules)
    overlap = _overlaps(gt_labels, n_gt, pred_labels, n_pred)
    if rules.mode == "anima":
        tp_gt = _detected_anima(overlap, rules)
        tp_pred = _detected_anima(overlap.T, rules)
    else:
        tp_gt = int((overlap[1:, 1:].sum(axis=1) >= rules.min_overlap_voxels).sum())
        tp_pred = int((overlap[1:, 1:].sum(axis=0) >= rules.min_overlap_voxels).sum())
    sensitivity = _ratio(tp_gt, n_gt, n_pred)
    ppv = _ratio(tp_pred, n_pred, n_gt)
    f1 = 0.0 if sensitivity + ppv == 0 else 2 * sensitivity * ppv / (sensitivity + ppv)
    return LesionMetrics(
        rules=rules.name,
        n_gt=n_gt,
        n_pred=n_pred,
        tp_gt=tp_gt,
        tp_pred=tp_pred,
        fn_gt=n_gt - tp_gt,
        fp_pred=n_pred - tp_pred,
        sensitivity=sensitivity,
        ppv=ppv,
        f1=f1,
    )
