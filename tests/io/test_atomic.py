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


def test_temporaries_of_a_live_writer_are_kept_those_of_a_gone_one_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from lesionseg.io.atomic import remove_stale_temporaries

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        kept = tmp_path / f".a_lesionseg.nii.gz.{live.pid}-x1y2.part.nii.gz"  # another shard, still writing
        stale = tmp_path / "sub" / f".b_lesionseg.nii.gz.{gone.pid}-x1y2.part.nii.gz"
        old_style = tmp_path / ".c_lesionseg.nii.gz.x1y2.part.nii.gz"
        stale.parent.mkdir()
        for path in (kept, stale, old_style):
            path.write_bytes(b"partial")
        assert remove_stale_temporaries(tmp_path) == 2
        assert kept.exists() and not stale.exists() and not old_style.exists()
    finally:
        live.kill()
        live.wait()
