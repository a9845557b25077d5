"""The batch's ``summary.csv``: one row per input (ok / failed / skipped, figures, the one-line error), rows of
earlier runs into the same folder kept for the inputs this run did not touch; per shard
``summary.shard-I-of-N.csv``, merged into ``summary.csv`` by the shard that finishes last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lesionseg.errors import OutputError
from lesionseg.outputs.tables import read_csv, write_csv

SUMMARY_FILE = "summary.csv"


@dataclass(frozen=True)
class InferenceRecord:
    """The outcome for one input: its row of the summary."""

    input: str
    status: str  # "ok", "failed" or "skipped"
    output: str
    lesions: int
    lesion_volume_mm3: float
    seconds: float
    error: str
    cord_output: str = ""
    warning: str = ""
    #: which lesion model of a cascade ran: ``lesion`` (the general one) or ``lesion-<contrast>``; "" without cascade
    lesion_stage: str = ""
    #: which lesions a cascade kept (minimum size, share inside the cord); "" without cascade
    lesion_rule: str = ""
    #: which cord model of a cascade ran: ``cord`` (the general one) or ``cord-<contrast>``; "" without cascade
    cord_stage: str = ""
    #: axial slices (planes across the head-foot axis) holding cord, of the image's ``axial_slices``; None without
    #: cascade
    cord_slices: int | None = None
    axial_slices: int | None = None
    #: median tilt-corrected cross-sectional area of the cord mask (mm2); None without cascade or cord
    cord_csa_mm2: float | None = None

    @classmethod
    def failed(cls, label: str, error: str, seconds: float = 0.0) -> InferenceRecord:
        return cls(label, "failed", "", 0, 0.0, round(seconds, 3), error)

    @classmethod
    def from_row(cls, row: dict) -> InferenceRecord:
        """A record from a summary row or a completion record's summary (unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{**asdict(cls.failed("", "")), **{k: v for k, v in row.items() if k in known}})


FIELDS = [f.name for f in fields(InferenceRecord)]


def shard_file_name(name: str, shard: tuple[int, int] | None) -> str:
    """``summary.csv`` -> ``summary.shard-I-of-N.csv`` for shard (I, N); ``name`` itself without a shard."""
    if shard is None:
        return name
    stem, dot, extension = name.partition(".")
    return f"{stem}.shard-{shard[0]}-of-{shard[1]}{dot}{extension}"


def check_summary_is_ours(path: Path) -> None:
    """Raises OutputError when ``path`` exists and is not a summary lesionseg wrote (it would be replaced)."""
    if path.exists() and read_csv(path)[0][:2] != FIELDS[:2]:
        raise OutputError(f"{path}: exists and is not a lesionseg summary; not replaced: choose another --out")


def write_summary(records: Sequence[InferenceRecord], path: Path, *, keep_others: bool = False) -> Path:
    """Write the records (atomically). With ``keep_others``, rows of an earlier summary at ``path`` for inputs not
    in ``records`` are kept first (two runs into one folder give one summary of both)."""
    rows = [asdict(record) for record in records]
    if keep_others:
        mine = {record.input for record in records}
        rows = [row for row in read_csv(path)[1] if row.get("input") not in mine] + rows
    return write_csv(path, rows, FIELDS)


def merge_shard_summaries(out_dir: Path, count: int) -> Path | None:
    """Merge ``summary.shard-*-of-COUNT.csv`` into ``summary.csv`` once all ``count`` exist; None before that."""
    parts = [out_dir / shard_file_name(SUMMARY_FILE, (index, count)) for index in range(count)]
    if not all(part.is_file() for part in parts):
        return None
    rows = [row for part in parts for row in read_csv(part)[1]]
    mine = {row.get("input") for row in rows}
    earlier = [row for row in read_csv(out_dir / SUMMARY_FILE)[1] if row.get("input") not in mine]
    return write_csv(out_dir / SUMMARY_FILE, [*earlier, *rows], FIELDS)
