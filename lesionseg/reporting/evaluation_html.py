"""A self-contained HTML page for an evaluation: summary, box plots, volume scatter, worst cases first."""

from __future__ import annotations

import csv
import html
import math
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt

from lesionseg.errors import LesionsegError
from lesionseg.evaluation.evaluate import EvaluationReport, ImageEvaluation
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.nifti import load_image
from lesionseg.reporting.figures import figure_to_data_uri, lesion_centre, overlay_slice

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2} td.l,th.l{text-align:left}
.cases{display:flex;flex-wrap:wrap;gap:12px} .case{border:1px solid #ddd;padding:6px;font-size:12px}
.note{color:#666;font-size:12px}
"""


def _participants(gt_dir: Path) -> dict[str, dict[str, str]]:
    path = gt_dir / "participants.tsv"
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {row["participant_id"]: row for row in csv.DictReader(handle, delimiter="\t") if "participant_id" in row}


def _box_plots(images: list[ImageEvaluation], metric_labels: dict[str, str], group_of) -> str:
    groups = sorted({group_of(image) for image in images})
    figure, axes = plt.subplots(1, len(metric_labels), figsize=(4 * len(metric_labels), 3.2), squeeze=False)
    for ax, (name, label) in zip(axes[0], metric_labels.items(), strict=True):
        data = [[v for i in images if group_of(i) == g and (v := i.value(name)) is not None and not math.isnan(v)] for g in groups]
        ax.boxplot(data, tick_labels=groups, showmeans=True)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(label, fontsize=10)
    return figure_to_data_uri(figure)


def _volume_scatter(images: list[ImageEvaluation]) -> str:
    truth = [i.metrics.volume_gt_mm3 for i in images if i.metrics]
    predicted = [i.metrics.volume_pred_mm3 for i in images if i.metrics]
    figure, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.scatter(truth, predicted, s=18)
    top = max([*truth, *predicted, 1.0]) * 1.05
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("true lesion volume (mm3)")
    ax.set_ylabel("predicted lesion volume (mm3)")
    return figure_to_data_uri(figure)


def _find_image(root: Path, stem: str) -> Path | None:
    for path in sorted(root.rglob(f"{stem}.nii*")):
        if "derivatives" not in path.relative_to(root).parts and path.name in (f"{stem}.nii", f"{stem}.nii.gz"):
            return path
    return None


def _case_overlay(image: ImageEvaluation, images_root: Path) -> str | None:
    source = _find_image(images_root, image.stem)
    if source is None or not image.prediction:
        return None
    try:
        scan = load_image(source)
        truth = load_image(image.ground_truth, kind="label").data
        prediction = load_image(image.prediction, kind="label").data
    except LesionsegError:
        return None
    centre = lesion_centre(truth) or lesion_centre(prediction) or tuple(s // 2 for s in scan.data.shape)
    return overlay_slice(
        scan.data,
        {"ground truth": (truth, "lime"), "prediction": (prediction, "red")},
        axis=0,
        index=centre[0],
        spacing_mm=scan.spacing_mm,
        title=f"{image.stem} sagittal {centre[0]}",
    )


def _format(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"


def _worst_cases(images: list, gt_dir: Path) -> list[str]:
    """Overlays of the worst images (ground truth green, prediction red); none when no image could be drawn."""
    cases = []
    for image in images:
        uri = _case_overlay(image, gt_dir)
        if uri:
            cases.append(f"<div class='case'><img src='{uri}'><br>{html.escape(image.stem)} Dice {_format(image.value('dice'))}</div>")
    if not cases:
        return []
    return ["<h2>Worst cases</h2><p class='note'>green: ground truth, red: prediction</p>",
            f"<div class='cases'>{''.join(cases)}</div>"]


def write_evaluation_html(
    report: EvaluationReport, path: Path, *, gt_dir: Path | None = None, worst_cases: int = 6, title: str = "Lesion segmentation evaluation"
) -> Path:
    """Write the evaluation page (atomically) and return its path.

    Args:
        report: from :func:`lesionseg.evaluation.evaluate.evaluate_folder`.
        path: destination ``.html``.
        gt_dir: ground-truth folder; when it is a BIDS root, its images are used for overlays and its
            ``participants.tsv`` ``site`` column (when present) for per-site box plots.
        worst_cases: how many of the lowest-Dice images get an overlay.
    """
    evaluated = [i for i in report.images if i.metrics is not None]
    primary = report.rules[0].name if report.rules else "anima"
    metric_labels = {"dice": "Dice", f"{primary}_f1": f"lesion F1 ({primary})"}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"]
    parts.append(f"<h1>{html.escape(title)}</h1><p class='note'>{len(evaluated)} image(s) evaluated, "
                 f"{len(report.images) - len(evaluated)} failed; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. "
                 "Research use, not a diagnostic device.</p>")
    parts.append("<h2>Summary</h2><table><tr><th class='l'>metric</th><th>mean</th><th>median</th><th>n</th></tr>")
    for name, stats in report.summary.items():
        parts.append(f"<tr><td class='l'>{html.escape(name)}</td><td>{_format(stats['mean'])}</td>"
                     f"<td>{_format(stats['median'])}</td><td>{int(stats['n'])}</td></tr>")
    parts.append("</table>")
    if evaluated:
        parts.append("<h2>Per contrast</h2>")
        parts.append(f"<img src='{_box_plots(evaluated, metric_labels, lambda i: i.contrast or '?')}'>")
        sites = _participants(gt_dir) if gt_dir is not None else {}
        if any("site" in row for row in sites.values()):
            parts.append("<h2>Per site</h2>")
            parts.append(f"<img src='{_box_plots(evaluated, metric_labels, lambda i: sites.get(i.subject, {}).get('site', '?'))}'>")
        parts.append("<h2>Lesion volume</h2>")
        parts.append(f"<img src='{_volume_scatter(evaluated)}'>")
    ordered = sorted(report.images, key=lambda i: (i.metrics is not None, i.value("dice") if i.metrics else 0.0))
    parts.append("<h2>Images, worst first</h2><table><tr><th class='l'>image</th><th>Dice</th>"
                 f"<th>{primary} sens.</th><th>{primary} PPV</th><th>FP lesions</th><th>HD95 mm</th>"
                 "<th>vol pred</th><th>vol gt</th><th class='l'>error</th></tr>")
    for image in ordered:
        parts.append(
            f"<tr><td class='l'>{html.escape(image.stem)}</td><td>{_format(image.value('dice'))}</td>"
            f"<td>{_format(image.value(f'{primary}_sensitivity'))}</td><td>{_format(image.value(f'{primary}_ppv'))}</td>"
            f"<td>{_format(image.value(f'{primary}_fp_pred'))}</td><td>{_format(image.value('hd95_mm'))}</td>"
            f"<td>{_format(image.value('volume_pred_mm3'))}</td><td>{_format(image.value('volume_gt_mm3'))}</td>"
            f"<td class='l'>{html.escape(image.error)}</td></tr>"
        )
    parts.append("</table>")
    if gt_dir is not None and evaluated:
        parts.extend(_worst_cases([i for i in ordered if i.metrics is not None][:worst_cases], gt_dir))
    rules = "; ".join(
        f"{r.name}: {r.connectivity}-connectivity, lesions &gt; {r.min_volume_mm3:g} mm3"
        + (f", alpha {r.alpha:g}, beta {r.beta:g}, gamma {r.gamma:g}" if r.mode == "anima" else f", overlap &ge; {r.min_overlap_voxels} voxel(s)")
        for r in report.rules
    )
    parts.append(f"<p class='note'>Lesion rules: {rules}.</p></body></html>")
    return atomic_write_text(Path(path), "\n".join(parts))

