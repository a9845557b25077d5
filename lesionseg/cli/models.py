"""``lesionseg models``: the shipped and installed models, their cards, and installing a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lesionseg.cli.common import handle_errors

app = typer.Typer(help="List the shipped and installed models, print a model's card, install a model.",
                  no_args_is_help=False, invoke_without_command=True)


@app.callback()
def models(context: typer.Context) -> None:
    """List the models (name, stages, size, title); ``show NAME`` prints a card, ``install FOLDER`` adds one."""
    if context.invoked_subcommand is not None:
        return
    with handle_errors():
        from rich.console import Console
        from rich.table import Table

        from lesionseg.io.registry import DEFAULT_MODEL, models_dir, shipped_models, user_models_dir

        found = shipped_models()
        table = Table(title=f"models shipped in {models_dir()} and installed in {user_models_dir()}")
        table.add_column("name", no_wrap=True)
        for column in ("stages", "MB", "card"):
            table.add_column(column, overflow="fold")
        for model in found:
            default = " (default)" if model.name == DEFAULT_MODEL else ""
            table.add_row(model.name + default, ", ".join(model.stages), f"{model.size_mb:.1f}", model.title)
        Console().print(table if found else f"no model in {models_dir()} or {user_models_dir()}")


@app.command()
def show(name: Annotated[str, typer.Argument(help="A model's name or folder.")]) -> None:
    """Print a model's card and its stages' cards."""
    with handle_errors():
        from rich.console import Console
        from rich.markdown import Markdown

        from lesionseg.io.checkpoint import CARD_FILE, bundle_stages
        from lesionseg.io.registry import resolve_model

        folder = resolve_model(name)
        stages = [stage for stage in bundle_stages(folder) if stage != "."]
        cards = [folder / CARD_FILE, *(folder / stage / CARD_FILE for stage in stages)]
        for card in filter(lambda path: path.is_file(), cards):
            Console().print(Markdown(card.read_text(encoding="utf-8")))


@app.command()
def install(
    folder: Annotated[Path, typer.Argument(help="A model folder (RUN/model) or cascade bundle.")],
    name: Annotated[str | None, typer.Option(help="Name to install it under (default: the folder's name).")] = None,
) -> None:
    """Install a model a site trained or received: its SHA-256 checked, then copied into the user model folder,
    usable by name (``lesionseg infer --model NAME``)."""
    with handle_errors():
        from lesionseg.io.registry import install_model

        target = install_model(folder, name)
        typer.echo(f"installed {target.name} in {target} (use --model {target.name})", err=True)
