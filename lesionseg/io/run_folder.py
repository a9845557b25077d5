"""What an output folder knows about itself: which run writes into it (a lock) and which input each scan's
outputs belong to (a per-scan completion record).

Each scan's outputs are announced before they are written and confirmed after: ``<stem>_lesionseg-record.json``
is written with ``status: "started"`` and the list of outputs first, then the outputs, then the same record with
``status: "done"`` and the scan's figures, atomically, last. So:

- a scan is done only when its record says so and every output it lists exists; anything else is redone;
- a file in the output folder may be replaced only when the record beside it names it and belongs to the same
  input (the same file path, or the same patient/study/series hash for DICOM); a user's file, an input, or
  another input's outputs are never replaced;
- a resumed batch reports a skipped scan with the figures its record holds.

Only one run writes into a folder at a time (``.lesionseg-infer.lock``, or one lock per shard;
``.lesionseg-train.lock`` for a training run); a lock left by a killed run (its process is gone) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lesionseg.constants import RECORD_SUFFIX
from lesionseg.errors import OutputError
from lesionseg.io.atomic import atomic_write_text

RECORD_FORMAT = "lesionseg-scan-record/1"
LOCK_PREFIX = ".lesionseg-"


@dataclass(frozen=True)
class ScanRecord:
    """One scan's completion record.

    Attributes:
        identity: what the input is (``nifti:<resolved path>`` or ``dicom:<identifier hash>``).
        fingerprint: how the input looked when it was processed (sizes, modification times); a changed input
            is redone.
        outputs: the names of the scan's outputs, in the record's folder.
        status: ``started`` (outputs announced, maybe partial) or ``done`` (all written).
        summary: the scan's row of the batch summary (lesion count, volume, warnings, ...).
    """

    identity: str
    fingerprint: dict[str, int]
    outputs: tuple[str, ...]
    status: str = "started"
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        payload = {"format": RECORD_FORMAT, "status": self.status, "identity": self.identity,
                   "fingerprint": self.fingerprint, "outputs": list(self.outputs), "summary": self.summary}
        return json.dumps(payload, indent=2) + "\n"


def record_path(folder: Path, stem: str) -> Path:
    """``folder/<stem>_lesionseg-record.json``."""
    return folder / f"{stem}_{RECORD_SUFFIX}.json"


def read_record(path: Path) -> ScanRecord | None:
    """The record at ``path``; None when there is none or it is not one of ours (unreadable, other format)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("format") != RECORD_FORMAT:
        return None
    return ScanRecord(
        identity=str(payload.get("identity", "")),
        fingerprint=dict(payload.get("fingerprint") or {}),
        outputs=tuple(payload.get("outputs") or ()),
        status=str(payload.get("status", "")),
        summary=dict(payload.get("summary") or {}),
    )


def write_record(path: Path, record: ScanRecord) -> Path:
    """Write ``record`` atomically."""
    return atomic_write_text(path, record.to_json())


def file_fingerprint(paths: list[Path]) -> dict[str, int]:
    """Number of files, total bytes and latest modification time (ns) of an input's files."""
    stats = [p.stat() for p in paths]
    return {"files": len(stats), "bytes": sum(s.st_size for s in stats), "mtime_ns": max(s.st_mtime_ns for s in stats)}


def check_replaceable(destinations: list[Path], record: ScanRecord | None, identity: str) -> None:
    """Refuse to write over a file this input's earlier runs did not write.

    Raises:
        OutputError: one line naming the first existing destination that is the user's, an input, or another
            input's output.
    """
    for destination in destinations:
        if not destination.exists():
            continue
        if record is None or destination.name not in record.outputs:
            raise OutputError(
                f"{destination}: exists and was not written by lesionseg for this input (an input, a manual mask, "
                "or another tool's file); not replaced: choose another --out"
            )
        if record.identity != identity:
            raise OutputError(
                f"{destination}: holds the outputs of another input with the same name (from an earlier run); "
                "not replaced: choose another --out"
            )


def is_done(record: ScanRecord | None, identity: str, fingerprint: dict[str, int], destinations: list[Path]) -> bool:
    """True when ``record`` says this very input (unchanged since) was completed with every output this run
    would write, and they all still exist."""
    if record is None or record.status != "done" or record.identity != identity or record.fingerprint != fingerprint:
        return False
    return all(d.name in record.outputs and d.is_file() for d in destinations)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def _holder(lock: Path) -> str | None:
    """Who holds ``lock`` (``pid@host``) when its process still runs (or runs on another host); None when the
    lock is gone or stale."""
    try:
        pid_text, _, host = lock.read_text(encoding="utf-8").strip().partition("@")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if host and host != socket.gethostname():
        return f"{pid}@{host}"
    return f"{pid}@{host}" if _process_alive(pid) and pid != os.getpid() else None


@contextlib.contextmanager
def output_lock(out_dir: Path, shard: tuple[int, int] | None = None, *, command: str = "infer") -> Iterator[Path]:
    """Hold ``OUT/.lesionseg-<command>.lock`` (or ``...shard-I-of-N.lock``) while a command writes into
    ``out_dir``.

    A whole run conflicts with any other run of the command; shards of one run conflict only with the same shard
    and with a whole run.

    Raises:
        OutputError: another live run holds a conflicting lock.
    """
    prefix = f"{LOCK_PREFIX}{command}"
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{out_dir}: cannot create the output folder ({error.strerror or error})") from None
    name = f"{prefix}.lock" if shard is None else f"{prefix}.shard-{shard[0]}-of-{shard[1]}.lock"
    mine = out_dir / name
    conflicting = sorted(out_dir.glob(f"{prefix}*.lock")) if shard is None else [mine, out_dir / f"{prefix}.lock"]
    for lock in conflicting:
        holder = _holder(lock)
        if holder is not None:
            raise OutputError(
                f"{out_dir}: another lesionseg {command} (process {holder}) is writing here; wait for it to finish or "
                f"choose another --out (remove {lock.name} if that process is gone)"
            )
    for lock in conflicting:
        lock.unlink(missing_ok=True)  # stale: their processes are gone
    try:
        descriptor = os.open(mine, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise OutputError(f"{out_dir}: another lesionseg {command} started writing here at the same moment") from None
    except OSError as error:
        raise OutputError(f"{mine}: cannot write ({error.strerror or error})") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}@{socket.gethostname()}\n")
    try:
        yield mine
    finally:
        mine.unlink(missing_ok=True)
