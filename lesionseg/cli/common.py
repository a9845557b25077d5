"""What every command shares: logging set-up and turning library errors into one-line messages."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

import typer

from lesionseg.errors import LesionsegError, unexpected

_state = {"debug": False}


#: Libraries whose warnings (deprecations, "this will change" notices) mean nothing to a user of the command.
QUIET_MODULES = r"(torch|torchio|monai|highdicom|pydicom|nibabel|SimpleITK|matplotlib|scipy|numpy)(\.|$)"


def set_debug(debug: bool) -> None:
    """Remember ``--debug`` and set up rich logging on stderr: lesionseg's own INFO lines, only warnings from
    other libraries (highdicom's INFO lines, for one), and none of their Python warnings unless ``--debug``."""
    _state["debug"] = debug
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=debug, rich_tracebacks=debug, console=_stderr_console())],
        force=True,
    )
    logging.getLogger("lesionseg").setLevel(logging.DEBUG if debug else logging.INFO)
    if not debug:
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category, module=QUIET_MODULES)


def _stderr_console():  # noqa: ANN202
    from rich.console import Console

    return Console(stderr=True)


def error(message: str) -> None:
    """Print a one-line error to stderr."""
    typer.echo(f"error: {message}", err=True)


def one_line_error(exc: BaseException) -> str:
    """The one line a user reads for any exception: the message of lesionseg's own errors and of bad values
    (pydantic, text decoding); for anything else its type and first line plus where to find the traceback."""
    from pydantic import ValidationError

    if isinstance(exc, LesionsegError):
        return str(exc)
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
        where = ".".join(str(part) for part in first["loc"])
        return f"{where + ': ' if where else ''}{first['msg']}"
    if isinstance(exc, UnicodeDecodeError):
        return f"cannot decode text as {exc.encoding} (byte {exc.start}); expected a UTF-8 text file"
    return unexpected(exc)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """The single catch at a command's boundary: any error becomes one ``error: ...`` line on stderr and exit
    code 1 (with ``--debug``, the traceback instead); Ctrl-C exits 130."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
        raise  # typer's own exits and usage errors
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the command boundary: one line, never a traceback
        if _state["debug"]:
            raise
        error(one_line_error(exc))
        raise typer.Exit(1) from None
