"""``lesionseg export``: write a model's network in another format (ONNX) for other runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from lesionseg.cli.common import handle_errors


def export(
    model: Annotated[Path, typer.Argument(help="Model folder (RUN/model).")],
    output_format: Annotated[Literal["onnx"], typer.Option("--format", help="onnx (needs lesionseg[onnx]).")] = "onnx",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: MODEL/model.onnx).")] = None,
) -> None:
    """Export a model's network to ONNX; `lesionseg infer --engine onnxruntime --model MODEL` then runs it."""
    with handle_errors():
        from lesionseg.inference.onnx import export_onnx

        written = export_onnx(model, out)
        typer.echo(f"wrote {written} ({output_format})", err=True)
