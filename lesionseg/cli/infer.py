"""``lesionseg infer``: segment files, folders or BIDS datasets; one bad file never stops the batch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lesionseg.cli.common import handle_errors


def infer(
    inputs: Annotated[list[Path], typer.Argument(help="NIfTI files, folders or BIDS datasets.")],
    model: Annotated[Path, typer.Option(help="Model folder (RUN/model) or a best.pt/last.pt checkpoint.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("lesionseg-output"),
    soft: Annotated[bool, typer.Option(help="Also write <stem>_lesionseg-soft.nii.gz probabilities.")] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    overlap: Annotated[float | None, typer.Option(help="Sliding-window overlap (default: the model's).")] = None,
    sw_batch_size: Annotated[int | None, typer.Option(help="Windows per forward pass (default: the model's).")] = None,
    threshold: Annotated[float | None, typer.Option(help="Probability threshold (default: the model's).")] = None,
) -> None:
    """Segment lesions; writes <stem>_lesionseg.nii.gz on each input's native grid and OUT/summary.csv."""
    with handle_errors():
        from rich.console import Console
        from rich.progress import Progress
        from rich.table import Table

        from lesionseg.inference.batch import collect_inputs, run_batch
        from lesionseg.inference.predictor import Predictor

        console = Console(stderr=True)
        predictor = Predictor.from_model(model, device=device)
        updates = {"overlap": overlap, "sw_batch_size": sw_batch_size, "threshold": threshold}
        for key, value in updates.items():
            if value is not None:
                setattr(predictor.config.infer, key, value)
        total = len(collect_inputs(inputs)[0])
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("infer", total=total)
            records = run_batch(
                predictor, inputs, out, soft=soft, on_record=lambda record: progress.advance(task)
            )
        table = Table(title=f"lesionseg infer -> {out}")
        for column in ("file", "status", "lesions", "volume mm3", "seconds"):
            table.add_column(column, justify="right" if column not in ("file", "status") else "left")
        for record in records:
            table.add_row(
                Path(record.input).name, record.status, str(record.lesions), f"{record.lesion_volume_mm3:.1f}", f"{record.seconds:.2f}"
            )
        Console().print(table)
        failed = [r for r in records if r.status != "ok"]
        if failed:
            for record in failed:
                typer.echo(f"error: {record.error}", err=True)
            typer.echo(f"{len(failed)} of {len(records)} input(s) failed; see {out / 'summary.csv'}", err=True)
            raise typer.Exit(1)
