"""The ``lesionseg`` command: a root Typer app with one module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from lesionseg.cli.common import set_debug
from lesionseg.cli.synth import synth

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
