"""Evaluate a folder of predictions against ground truth: per-image metrics, a summary, CSV and JSON.

Predictions are ``<stem>_lesionseg.nii.gz`` anywhere under the prediction folder (as ``lesionseg infer``
writes them); ground truth is ``<stem>_<suffix>.nii.gz`` anywhere under the ground-truth folder (a BIDS root,
its ``derivatives/labels``, or a flat folder). Files pair by ``<stem>`` (e.g. ``sub-001_T2w``), so by
subject, session and contrast.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lesionseg.constants import LESION_OUTPUT_SUFFIX, LESION_SUFFIX, NIFTI_EXTENSIONS
from lesionseg.errors import InputError, LesionsegError
from lesionseg.evaluation.metrics import VoxelMetrics, voxel_metrics
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.nifti import load_image, strip_nifti_extension
from lesionseg.io.validate import check_same_grid

#: Metrics summarised (mean and median) over images.
SUMMARY_FIELDS = ("dice", "precision", "recall", "abs_volume_diff_mm3", "rel_volume_diff", "lesions_pred", "lesions_gt")


@dataclass(frozen=True)
class ImageEvaluation:
    """Metrics of one image, or the reason it could not be evaluated."""

    stem: str
    subject: str
    contrast: str
    prediction: str
    ground_truth: str
    metrics: VoxelMetrics | None
    error: str = ""


@dataclass(frozen=True)
class EvaluationReport:
    """All images, and mean/median per metric over the evaluated ones."""

    images: tuple[ImageEvaluation, ...]
    summary: dict[str, dict[str, float]]

    @property
    def failed(self) -> tuple[ImageEvaluation, ...]:
        return tuple(image for image in self.images if image.metrics is None)


def _index(folder: Path, suffix: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for extension in NIFTI_EXTENSIONS:
        for path in sorted(folder.rglob(f"*_{suffix}{extension}")):
            if path.name.startswith("."):
                continue
            found.setdefault(strip_nifti_extension(path)[: -len(suffix) - 1], path)
    return found


def _subject_and_contrast(stem: str) -> tuple[str, str]:
    parts = stem.split("_")
    subject = parts[0] if parts[0].startswith("sub-") else ""
    return subject, parts[-1]


def evaluate_pair(prediction: Path, ground_truth: Path) -> VoxelMetrics:
    """Metrics of one prediction file against one ground-truth file (same native grid required).

    Raises:
        InputError: unreadable files, non-binary masks, or different grids.
    """
    gt = load_image(ground_truth, kind="label")
    pred = load_image(prediction, kind="label")
    check_same_grid(
        gt.path, gt.geometry.shape, gt.geometry.affine, pred.path, pred.geometry.shape, pred.geometry.affine
    )
    return voxel_metrics(pred.data, gt.data, gt.spacing_mm)


def _summarise(images: list[ImageEvaluation]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for name in SUMMARY_FIELDS:
        values = [float(getattr(i.metrics, name)) for i in images if i.metrics is not None]
        values = [v for v in values if not math.isnan(v)]
        if values:
            summary[name] = {"mean": statistics.fmean(values), "median": statistics.median(values), "n": len(values)}
    return summary


def evaluate_folder(
    pred_dir: str | Path,
    gt_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    gt_suffix: str = LESION_SUFFIX,
    pred_suffix: str = LESION_OUTPUT_SUFFIX,
) -> EvaluationReport:
    """Pair predictions with ground truth by stem and compute per-image metrics.

    A ground truth without a prediction, or a pair that cannot be compared, is listed with its error and
    left out of the summary. With ``out_dir``, writes ``metrics.csv`` and ``metrics.json`` there.

    Raises:
        InputError: a folder is missing, or no pair could be formed.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for folder in (pred_dir, gt_dir):
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder")
    predictions = _index(pred_dir, pred_suffix)
    truths = _index(gt_dir, gt_suffix)
    if not truths:
        raise InputError(f"{gt_dir}: no ground truth named *_{gt_suffix}.nii.gz")
    if not set(predictions) & set(truths):
        raise InputError(f"{pred_dir}: no prediction *_{pred_suffix}.nii.gz matches a ground truth in {gt_dir}")
    images: list[ImageEvaluation] = []
    for stem, truth in sorted(truths.items()):
        subject, contrast = _subject_and_contrast(stem)
        prediction = predictions.get(stem)
        if prediction is None:
            images.append(ImageEvaluation(stem, subject, contrast, "", str(truth), None, f"{truth}: no prediction"))
            continue
        try:
            metrics = evaluate_pair(prediction, truth)
            images.append(ImageEvaluation(stem, subject, contrast, str(prediction), str(truth), metrics))
        except LesionsegError as error:
            images.append(ImageEvaluation(stem, subject, contrast, str(prediction), str(truth), None, str(error)))
    report = EvaluationReport(images=tuple(images), summary=_summarise(images))
    if out_dir is not None:
        write_report(report, Path(out_dir))
    return report


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def write_report(report: EvaluationReport, out_dir: Path) -> None:
    """Write ``metrics.csv`` (one row per image) and ``metrics.json`` (rows + summary), atomically."""
    metric_names = [f.name for f in fields(VoxelMetrics)]
    header = ["stem", "subject", "contrast", *metric_names, "prediction", "ground_truth", "error"]
    rows = []
    for image in report.images:
        metrics = asdict(image.metrics) if image.metrics is not None else dict.fromkeys(metric_names, "")
        rows.append({"stem": image.stem, "subject": image.subject, "contrast": image.contrast, **metrics,
                     "prediction": image.prediction, "ground_truth": image.ground_truth, "error": image.error})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "metrics.csv", buffer.getvalue())
    payload = {"images": [_json_safe(row) for row in rows], "summary": report.summary}
    atomic_write_text(out_dir / "metrics.json", json.dumps(payload, indent=2) + "\n")
