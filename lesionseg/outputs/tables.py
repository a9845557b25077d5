"""The one CSV and JSON writer every output uses: atomic (a temporary file, then a rename)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lesionseg.io.atomic import atomic_write_text


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], fields: Sequence[str], *, delimiter: str = ",") -> Path:
    """Write ``rows`` (missing keys empty, extra keys left out) under the header ``fields``, atomically
    (``delimiter="\\t"``: a TSV file)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore", restval="", delimiter=delimiter,
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a CSV file; empty when it is missing or unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error):
        return [], []
    return list(reader.fieldnames or []), rows
