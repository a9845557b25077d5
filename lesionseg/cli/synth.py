"""``lesionseg synth``: write a BIDS dataset of synthetic spinal-cord phantoms."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from lesionseg.cli.common import handle_errors


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the BIDS dataset to.", file_okay=False)],
    subjects: Annotated[int, typer.Option("--subjects", "-n", min=1, help="Number of subjects.")] = 8,
    contrasts: Annotated[str, typer.Option(help="Comma-separated contrasts: T2w, T1w, PSIR, T2starw.")] = "T2w",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same dataset.")] = 0,
    config: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="YAML config; its 'synth' section is used.")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config value: synth.fov_mm=[40,56,120].")] = None,
) -> None:
    """Write synthetic spinal-cord phantoms with MS-like lesions (BIDS, with lesion and cord masks)."""
    with handle_errors():
        from rich.console import Console
        from rich.table import Table

        from lesionseg.config import load_config
        from lesionseg.synth.dataset import make_dataset

        overrides = [f"synth.subjects={subjects}", f"synth.seed={seed}", f"synth.contrasts=[{contrasts}]"]
        cfg = load_config(config, overrides=[*overrides, *(set_ or [])])
        started = time.perf_counter()
        summaries = make_dataset(out, cfg.synth)
        seconds = time.perf_counter() - started

        table = Table(title=f"{len(summaries)} phantoms in {out} ({seconds:.1f} s)")
        table.add_column("subject")
        table.add_column("lesions", justify="right")
        for contrast in cfg.synth.contrasts:
            table.add_column(f"{contrast} lesion voxels", justify="right")
        for summary in summaries:
            table.add_row(
                summary.subject, str(summary.lesions), *(str(summary.lesion_voxels[c]) for c in cfg.synth.contrasts)
            )
        Console().print(table)
