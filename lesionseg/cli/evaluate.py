"""``lesionseg evaluate``: voxel, surface and lesion-wise metrics per image, a summary, an HTML report, and
side-by-side comparison of several runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lesionseg.cli.common import error, handle_errors


def evaluate(
    gt: Annotated[Path, typer.Option(help="Ground truth: a BIDS dataset or a folder of <stem>_lesion-manual.nii.gz.")],
    pred: Annotated[Path | None, typer.Option(help="Folder of <stem>_lesionseg.nii.gz predictions.")] = None,
    compare: Annotated[
        list[Path] | None, typer.Option(help="Prediction folders to compare (repeat); the first is the baseline.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for metrics.csv, metrics.json and report.html.")
    ] = None,
    preset: Annotated[list[str] | None, typer.Option(help="Lesion rules: anima, simple (repeat; default both).")] = None,
    gt_suffix: Annotated[str, typer.Option(help="Ground-truth suffix.")] = "lesion-manual",
    pred_suffix: Annotated[str, typer.Option(help="Prediction suffix.")] = "lesionseg",
) -> None:
    """Compare predictions with ground truth (pairs by subject, session and contrast)."""
    with handle_errors():
        from rich.console import Console

        from lesionseg.errors import ConfigError
        from lesionseg.evaluation.evaluate import evaluate_folder
        from lesionseg.evaluation.lesionwise import PRESETS

        names = preset or ["anima", "simple"]
        unknown = [name for name in names if name not in PRESETS]
        if unknown:
            raise ConfigError(f"--preset {unknown[0]!r}: unknown; choose from {', '.join(PRESETS)}")
        rules = tuple(PRESETS[name] for name in names)
        folders = list(compare or []) + ([pred] if pred is not None else [])
        if not folders:
            raise ConfigError("give --pred FOLDER or --compare FOLDER --compare FOLDER")
        console = Console()
        if len(folders) == 1:
            report = evaluate_folder(folders[0], gt, out, gt_suffix=gt_suffix, pred_suffix=pred_suffix, rules=rules)
            _print_report(console, report)
            if out is not None:
                from lesionseg.reporting.evaluation_html import write_evaluation_html

                page = write_evaluation_html(report, out / "report.html", gt_dir=gt)
                console.print(f"report: {page}")
            for image in report.failed:
                error(image.error)
            if report.failed:
                raise typer.Exit(1)
            return
        _compare(console, folders, gt, out, gt_suffix, pred_suffix, rules)


def _print_report(console, report) -> None:  # noqa: ANN001
    from rich.table import Table

    primary = report.rules[0].name
    table = Table(title="lesion segmentation")
    columns = ("image", "Dice", "HD95 mm", f"{primary} sens", f"{primary} PPV", f"{primary} F1", "FP", "vol pred/gt mm3")
    for column in columns:
        table.add_column(column, justify="left" if column == "image" else "right")
    for image in report.images:
        m = image.metrics
        if m is None:
            table.add_row(image.stem, "error", *[""] * 6)
            continue
        table.add_row(
            image.stem, f"{m.dice:.3f}", f"{m.hd95_mm:.1f}", f"{image.value(f'{primary}_sensitivity'):.2f}",
            f"{image.value(f'{primary}_ppv'):.2f}", f"{image.value(f'{primary}_f1'):.2f}",
            f"{image.value(f'{primary}_fp_pred'):.0f}", f"{m.volume_pred_mm3:.0f}/{m.volume_gt_mm3:.0f}",
        )
    console.print(table)
    summary = Table(title="summary over images")
    summary.add_column("metric")
    summary.add_column("mean", justify="right")
    summary.add_column("median", justify="right")
    for name, stats in report.summary.items():
        summary.add_row(name, f"{stats['mean']:.3f}", f"{stats['median']:.3f}")
    console.print(summary)


def _compare(console, folders, gt, out, gt_suffix, pred_suffix, rules) -> None:  # noqa: ANN001
    import csv
    import io
    import json
    from dataclasses import asdict

    from rich.table import Table

    from lesionseg.evaluation.compare import compare_reports
    from lesionseg.evaluation.evaluate import evaluate_folder
    from lesionseg.io.atomic import atomic_write_text

    reports = {}
    for folder in folders:
        name = folder.name if folder.name not in reports else str(folder)
        reports[name] = evaluate_folder(
            folder, gt, out / name if out else None, gt_suffix=gt_suffix, pred_suffix=pred_suffix, rules=rules
        )
    rows = compare_reports(reports)
    table = Table(title=f"compared with {rows[0].baseline}" if rows else "comparison")
    for column in ("metric", "run", "pairs", "baseline mean", "run mean", "mean diff", "Wilcoxon p"):
        table.add_column(column, justify="left" if column in ("metric", "run") else "right")
    for row in rows:
        table.add_row(
            row.metric, row.run, str(row.n_pairs), f"{row.baseline_mean:.3f}", f"{row.run_mean:.3f}",
            f"{row.mean_difference:+.3f}", f"{row.wilcoxon_p:.3g}",
        )
    console.print(table)
    if out is not None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(asdict(rows[0])) if rows else ["metric"])
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
        atomic_write_text(out / "compare.csv", buffer.getvalue())
        payload = [{k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(row).items()} for row in rows]
        atomic_write_text(out / "compare.json", json.dumps(payload, indent=2) + "\n")
