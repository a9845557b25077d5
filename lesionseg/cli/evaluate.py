"""``lesionseg evaluate``: Dice, precision, recall, volumes and lesion counts per image, with a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lesionseg.cli.common import handle_errors


def evaluate(
    pred: Annotated[Path, typer.Option(help="Folder of <stem>_lesionseg.nii.gz predictions.")],
    gt: Annotated[Path, typer.Option(help="Ground truth: a BIDS dataset or a folder of <stem>_lesion-manual.nii.gz.")],
    out: Annotated[Path | None, typer.Option(help="Folder for metrics.csv and metrics.json.")] = None,
    gt_suffix: Annotated[str, typer.Option(help="Ground-truth suffix.")] = "lesion-manual",
) -> None:
    """Compare predictions with ground truth (pairs by subject, session and contrast)."""
    with handle_errors():
        from rich.console import Console
        from rich.table import Table

        from lesionseg.evaluation.evaluate import evaluate_folder

        report = evaluate_folder(pred, gt, out, gt_suffix=gt_suffix)
        table = Table(title="lesion segmentation")
        for column in ("image", "Dice", "precision", "recall", "vol pred mm3", "vol gt mm3", "lesions pred/gt"):
            table.add_column(column, justify="left" if column == "image" else "right")
        for image in report.images:
            m = image.metrics
            if m is None:
                table.add_row(image.stem, "error", "", "", "", "", "")
                continue
            table.add_row(
                image.stem, f"{m.dice:.3f}", f"{m.precision:.3f}", f"{m.recall:.3f}",
                f"{m.volume_pred_mm3:.0f}", f"{m.volume_gt_mm3:.0f}", f"{m.lesions_pred}/{m.lesions_gt}",
            )
        for statistic in ("mean", "median"):
            values = {k: v[statistic] for k, v in report.summary.items()}
            table.add_row(
                f"[bold]{statistic}", *(f"{values[k]:.3f}" if k in values else "" for k in ("dice", "precision", "recall")),
                "", "", "",
            )
        Console().print(table)
        for image in report.failed:
            typer.echo(f"error: {image.error}", err=True)
        if report.failed:
            raise typer.Exit(1)
