"""Atomic writes: a temporary file in the destination folder, then :func:`os.replace`.

A crash or a kill leaves either the previous file or the complete new one, never a half-written output that
looks valid. The temporary name starts with ``.`` and ends with ``.part`` so folder scans skip it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from lesionseg.errors import OutputError

#: the writer's process id in a temporary file's name
_WRITER_PID = re.compile(r"\.(\d+)-[^.]*\.part")


def _default_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 minus the umask); ``mkstemp`` would leave 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; on success it replaces ``destination``.

    The suffixes of ``destination`` (e.g. ``.nii.gz``) are kept on the temporary path so writers that infer
    the format from the name still work.

    Raises:
        OutputError: the folder cannot be created or written, or the disk is full.
    """
    destination = Path(destination)
    suffix = "".join(destination.suffixes)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{destination.name}.{os.getpid()}-", suffix=f".part{suffix}", dir=destination.parent
        )
        os.close(handle)
        os.chmod(temporary, _default_mode())  # outputs readable as any other file the user writes
    except OSError as error:
        raise OutputError(f"{destination}: cannot write ({error.strerror or error})") from None
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.replace(temporary_path, destination)
    except OSError as error:
        raise OutputError(f"{destination}: cannot write ({error.strerror or error})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary_path.unlink()


def atomic_write(destination: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` and move the result onto ``destination`` atomically."""
    with atomic_path(destination) as temporary:
        write(temporary)
    return Path(destination)


def atomic_write_text(destination: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``destination`` atomically."""
    return atomic_write(destination, lambda path: path.write_text(text, encoding="utf-8"))


def _writer_alive(temporary: Path) -> bool:
    """Whether the process that named ``temporary`` (``.<name>.<pid>-<random>.part...``) still runs (another
    shard writing into the same folder); False for this process's own leftovers and for names without a pid."""
    match = _WRITER_PID.search(temporary.name)
    if match is None or int(match.group(1)) == os.getpid():
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files a killed writer left under ``folder`` (``.<name>.<pid>-<random>.part<suffix>``);
    those of a writer that still runs (another shard of the same batch) are left alone.

    Returns:
        How many were removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob(".*.part*"):
        if path.is_file() and not _writer_alive(path):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed
