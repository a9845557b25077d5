"""``lesionseg infer``'s view of a batch: a progress bar on a terminal, a line per scan in a log file (cluster
jobs), then a table of the results, the warnings and errors once each, and the index page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from lesionseg.inference.batch import BatchOptions, run_batch
from lesionseg.inference.segmenter import Segmenter
from lesionseg.io.inputs import collect_inputs, shard_items
from lesionseg.outputs.summary import SUMMARY_FILE, InferenceRecord, shard_file_name


def run_with_progress(
    segmenter: Segmenter, inputs: Sequence[Path], out: Path, options: BatchOptions, *, report_model: str | None
) -> list[InferenceRecord]:
    """Run the batch (with an HTML report per scan when ``report_model`` names the model) and print its results."""
    from rich.console import Console
    from rich.progress import Progress

    from lesionseg import __version__

    writers = []
    if report_model is not None:
        from lesionseg.reporting.inference_html import ReportWriter

        writers.append(ReportWriter(report_model, __version__))
    console = Console(stderr=True)
    total = len(shard_items(collect_inputs(inputs, selection=options.selection, out_dir=out)[0], options.shard))
    if console.is_terminal:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("infer", total=total)
            records = run_batch(segmenter, inputs, out, options=options, writers=writers,
                                on_record=lambda record: progress.advance(task))
    else:  # a log file: one line per scan
        done = []

        def log(record: InferenceRecord) -> None:
            done.append(record)
            typer.echo(f"infer {len(done)}/{total}: {record.status} {record.input}", err=True)

        records = run_batch(segmenter, inputs, out, options=options, writers=writers, on_record=log)
    if report_model is not None:
        from lesionseg.reporting.inference_html import write_index

        write_index(records, out, shard_file_name("index.html", options.shard))
    print_records(records, out / shard_file_name(SUMMARY_FILE, options.shard))
    return records


def print_records(records: Sequence[InferenceRecord], summary: Path) -> None:
    """The results table (file names never cut), the counts, then each warning and error once."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lesionseg infer -> {summary.parent}")
    table.add_column("input", overflow="fold")
    table.add_column("status", no_wrap=True)
    for column in ("lesions", "volume mm3", "seconds"):
        table.add_column(column, justify="right", no_wrap=True)
    for record in records:
        table.add_row(Path(record.input).name, record.status, str(record.lesions), f"{record.lesion_volume_mm3:.1f}",
                      f"{record.seconds:.2f}")
    Console().print(table)
    counts = {status: sum(1 for r in records if r.status == status) for status in ("ok", "failed", "skipped")}
    typer.echo(f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped; summary: {summary}", err=True)
    for record in records:
        if record.warning and record.status == "ok":
            typer.echo(f"warning: {record.input}: {record.warning}", err=True)
    for record in records:
        if record.status == "failed":
            typer.echo(f"error: {record.error}", err=True)
