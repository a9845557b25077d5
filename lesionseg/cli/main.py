"""The ``lesionseg`` command: a root Typer app with one module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from lesionseg.cli.common import set_debug
from lesionseg.cli.benchmark import benchmark
from lesionseg.cli.evaluate import evaluate
from lesionseg.cli.export import export
from lesionseg.cli.infer import infer
from lesionseg.cli.models import app as models_app
from lesionseg.cli.synth import synth
from lesionseg.cli.train import train

app = typer.Typer(
    name="lesionseg",
    help="Segment multiple-sclerosis lesions in the spinal cord on MRI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from lesionseg import __version__

        typer.echo(f"lesionseg {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    """Segment multiple-sclerosis lesions in the spinal cord on MRI."""
    set_debug(debug)


app.command(help="Write synthetic spinal-cord phantoms with lesions (BIDS).")(synth)
app.command(help="Train a lesion (or cord) model from a YAML config on a BIDS dataset.")(train)
app.command(help="Segment lesions in NIfTI files, folders or BIDS datasets.")(infer)
app.command(help="Compare predicted masks with ground truth: Dice, precision, recall, volumes.")(evaluate)
app.command(help="Export a model's network to ONNX (for onnxruntime and other runtimes).")(export)
app.add_typer(models_app, name="models")
app.command(help="Time every stage of inference and training on this machine (JSON + Markdown).")(benchmark)


if __name__ == "__main__":
    app()
