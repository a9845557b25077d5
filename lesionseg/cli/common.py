"""What every command shares: logging set-up and turning library errors into one-line messages."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

import typer

from lesionseg.errors import LesionsegError

_state = {"debug": False}


def set_debug(debug: bool) -> None:
    """Remember ``--debug`` and set up rich logging on stderr."""
    _state["debug"] = debug
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=debug, rich_tracebacks=debug, console=_stderr_console())],
        force=True,
    )


def _stderr_console():  # noqa: ANN202
    from rich.console import Console

    return Console(stderr=True)


def error(message: str) -> None:
    """Print a one-line error to stderr."""
    typer.echo(f"error: {message}", err=True)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn a :class:`LesionsegError` into ``error: ...`` on stderr and exit code 1 (traceback with --debug)."""
    try:
        yield
    except LesionsegError as exc:
        if _state["debug"]:
            raise
        error(str(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)
