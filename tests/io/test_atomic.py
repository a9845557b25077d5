"""Atomic writes: complete files only, with the permissions of any other new file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lesionseg.io.atomic import atomic_write, atomic_write_text


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        written = atomic_write_text(tmp_path / "out" / "a.txt", "hello")
    finally:
        os.umask(previous)
    assert written.read_text() == "hello"
    assert written.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600: others can read results
    assert [p.name for p in written.parent.iterdir()] == ["a.txt"]


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "b.txt", "old")

    def fail(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["b.txt"]
