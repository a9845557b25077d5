"""``lesionseg models``: the shipped models, with their cards."""

from __future__ import annotations

from typing import Annotated

import typer

from lesionseg.cli.common import handle_errors


def models(
    name: Annotated[str | None, typer.Argument(help="Print this model's card (and its stages' cards).")] = None,
) -> None:
    """List the shipped models (name, stages, size, title) or print one model's card."""
    with handle_errors():
        from rich.console import Console
        from rich.markdown import Markdown
        from rich.table import Table

        from lesionseg.io.checkpoint import CARD_FILE, bundle_stages
        from lesionseg.io.registry import DEFAULT_MODEL, models_dir, resolve_model, shipped_models

        console = Console()
        if name is not None:
            folder = resolve_model(name)
            stages = [stage for stage in bundle_stages(folder) if stage != "."]
            cards = [folder / CARD_FILE, *(folder / stage / CARD_FILE for stage in stages)]
            for card in filter(lambda path: path.is_file(), cards):
                console.print(Markdown(card.read_text(encoding="utf-8")))
            return
        found = shipped_models()
        table = Table(title=f"shipped models in {models_dir()}")
        for column in ("name", "stages", "MB", "card"):
            table.add_column(column)
        for model in found:
            default = " (default)" if model.name == DEFAULT_MODEL else ""
            table.add_row(model.name + default, ", ".join(model.stages), f"{model.size_mb:.1f}", model.title)
        console.print(table if found else f"no shipped model in {models_dir()}")
