"""Exceptions raised by lesionseg.

Every error the library raises on purpose is a :class:`LesionsegError`. Its message is one line that names
the file (or config key) and the cause, so a batch runner can log it and go on with the next input.
"""

from __future__ import annotations


class LesionsegError(Exception):
    """Base class of every error lesionseg raises on purpose."""


class InputError(LesionsegError):
    """An input image, label or folder cannot be used (unreadable, wrong shape, bad values, ...)."""


class ConfigError(LesionsegError):
    """A configuration file or override is invalid."""


class ModelError(LesionsegError):
    """A checkpoint or model folder cannot be used."""


class OutputError(LesionsegError):
    """An output cannot be written (read-only folder, full disk, ...)."""


class TrainingError(LesionsegError):
    """Training cannot go on (NaN loss, no training data, ...)."""


def unexpected(error: BaseException) -> str:
    """The one line shown for an error lesionseg did not raise on purpose: its type, its first line, and where the
    traceback is (``--debug``)."""
    text = str(error).strip().splitlines()
    return f"unexpected {type(error).__name__}{': ' + text[0] if text else ''} (run with --debug for the traceback)"
