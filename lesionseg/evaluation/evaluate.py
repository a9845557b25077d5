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
from lesionseg.evaluation.lesionwise import PRESETS, LesionMetrics, LesionRules, lesion_metrics
from lesionseg.evaluation.metrics import VoxelMetrics, voxel_metrics
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.nifti import load_image, strip_nifti_extension
from lesionseg.io.validate import check_same_grid

#: Voxel metrics summarised (mean and median) over images.
SUMMARY_FIELDS = (
    "dice", "jaccard", "precision", "recall", "specificity", "hd95_mm", "assd_mm",
    "abs_volume_diff_mm3", "rel_volume_diff", "lesions_pred", "lesions_gt",
)
#: Lesion-wise metrics summarised per set of rules, as ``<rules>_<field>``.
LESION_SUMMARY_FIELDS = ("sensitivity", "ppv", "f1", "fp_pred", "fn_gt")
#: Rules applied by default: both presets.
DEFAULT_RULES = (PRESETS["anima"], PRESETS["simple"])


@dataclass(frozen=True)
class ImageEvaluation:
    """Metrics of one image, or the reason it could not be evaluated."""

    stem: str
    subject: str
    contrast: str
    prediction: str
    ground_truth: str
    metrics: VoxelMetrics | None
    lesions: tuple[LesionMetrics, ...] = ()
    error: str = ""

    def value(self, name: str) -> float | None:
        """A voxel metric (``dice``) or a lesion metric (``anima_f1``) by name; None when not computed."""
        if self.metrics is not None and hasattr(self.metrics, name):
            return float(getattr(self.metrics, name))
        for lesion in self.lesions:
            prefix = f"{lesion.rules}_"
            if name.startswith(prefix) and hasattr(lesion, name[len(prefix) :]):
                return float(getattr(lesion, name[len(prefix) :]))
        return None


@dataclass(frozen=True)
class EvaluationReport:
    """All images, and mean/median per metric over the evaluated ones."""

    images: tuple[ImageEvaluation, ...]
    summary: dict[str, dict[str, float]]
    rules: tuple[LesionRules, ...] = DEFAULT_RULES

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


def evaluate_pair(
    prediction: Path, ground_truth: Path, rules: tuple[LesionRules, ...] = DEFAULT_RULES
) -> tuple[VoxelMetrics, tuple[LesionMetrics, ...]]:
    """Voxel and lesion-wise metrics of one prediction file against one ground-truth file (same native grid).

    Raises:
        InputError: unreadable files, non-binary masks, or different grids.
    """
    gt = load_image(ground_truth, kind="label")
    pred = load_image(prediction, kind="label")
    check_same_grid(
        gt.path, gt.geometry.shape, gt.geometry.affine, pred.path, pred.geometry.shape, pred.geometry.affine
    )
    lesions = tuple(lesion_metrics(pred.data, gt.data, gt.spacing_mm, rule) for rule in rules)
    return voxel_metrics(pred.data, gt.data, gt.spacing_mm), lesions


def metric_names(rules: tuple[LesionRules, ...] = DEFAULT_RULES) -> list[str]:
    """Every summarised metric name: voxel metrics, then ``<rules>_<field>`` lesion metrics."""
    return [*SUMMARY_FIELDS, *(f"{rule.name}_{field}" for rule in rules for field in LESION_SUMMARY_FIELDS)]


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "median": statistics.median(values), "n": len(values)}


def _by_ground_truth(images: list[ImageEvaluation]) -> dict[str, list[float]]:
    """Summaries split by the ground truth (a lesion-free image's Dice is 0 or 1, whatever the size of its false
    lesions): Dice over the images with lesions; over the lesion-free ones, as MSSEG-2 scores its cases without new
    lesions, the share with any predicted lesion, the predicted lesions and their volume."""
    evaluated = [image.metrics for image in images if image.metrics is not None]
    free = [m for m in evaluated if m.lesions_gt == 0]
    return {
        "dice_images_with_lesions": [m.dice for m in evaluated if m.lesions_gt > 0],
        "lesion_free_with_false_lesion": [float(m.lesions_pred > 0) for m in free],
        "lesion_free_false_lesions": [float(m.lesions_pred) for m in free],
        "lesion_free_false_volume_mm3": [m.volume_pred_mm3 for m in free],
    }


def _summarise(images: list[ImageEvaluation], rules: tuple[LesionRules, ...]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for name in metric_names(rules):
        values = [i.value(name) for i in images]
        values = [v for v in values if v is not None and not math.isnan(v)]
        if values:
            summary[name] = _stats(values)
    summary.update({name: _stats(values) for name, values in _by_ground_truth(images).items() if values})
    return summary


def evaluate_folder(
    pred_dir: str | Path,
    gt_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    gt_suffix: str = LESION_SUFFIX,
    pred_suffix: str = LESION_OUTPUT_SUFFIX,
    rules: tuple[LesionRules, ...] = DEFAULT_RULES,
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
            images.append(ImageEvaluation(stem, subject, contrast, "", str(truth), None, error=f"{truth}: no prediction"))
            continue
        try:
            metrics, lesions = evaluate_pair(prediction, truth, rules)
            images.append(ImageEvaluation(stem, subject, contrast, str(prediction), str(truth), metrics, lesions))
        except LesionsegError as error:
            images.append(ImageEvaluation(stem, subject, contrast, str(prediction), str(truth), None, (), str(error)))
    report = EvaluationReport(images=tuple(images), summary=_summarise(images, rules), rules=rules)
    if out_dir is not None:
        write_report(report, Path(out_dir))
    return report


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def report_rows(report: EvaluationReport) -> tuple[list[str], list[dict[str, object]]]:
    """Header and one flat row per image (voxel metrics, then ``<rules>_<field>`` lesion metrics)."""
    voxel_names = [f.name for f in fields(VoxelMetrics)]
    lesion_names = [f.name for f in fields(LesionMetrics) if f.name != "rules"]
    lesion_columns = [f"{rule.name}_{name}" for rule in report.rules for name in lesion_names]
    header = ["stem", "subject", "contrast", *voxel_names, *lesion_columns, "prediction", "ground_truth", "error"]
    rows: list[dict[str, object]] = []
    for image in report.images:
        row: dict[str, object] = {"stem": image.stem, "subject": image.subject, "contrast": image.contrast}
        row.update(asdict(image.metrics) if image.metrics is not None else dict.fromkeys(voxel_names, ""))
        row.update(dict.fromkeys(lesion_columns, ""))
        for lesion in image.lesions:
            row.update({f"{lesion.rules}_{name}": getattr(lesion, name) for name in lesion_names})
        row.update({"prediction": image.prediction, "ground_truth": image.ground_truth, "error": image.error})
        rows.append(row)
    return header, rows


def write_report(report: EvaluationReport, out_dir: Path) -> None:
    """Write ``metrics.csv`` (one row per image) and ``metrics.json`` (rows, summary, rules), atomically."""
    header, rows = report_rows(report)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "metrics.csv", buffer.getvalue())
    payload = {
        "images": [_json_safe(row) for row in rows],
        "summary": report.summary,
        "rules": [asdict(rule) for rule in report.rules],
    }
    atomic_write_text(out_dir / "metrics.json", json.dumps(payload, indent=2) + "\n")
