"""Sharded batch inference: --shard I/N (or torchrun ranks) split the inputs; every input gets exactly one output,
the per-shard summaries merge into one, and a rerun skips what is done."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.inference.batch import InputFile, collect_inputs, shard_items
from tests.training.test_distributed import torchrun


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_shards_partition_the_inputs() -> None:
    items = [InputFile(Path(f"scan{i}.nii.gz"), Path(".")) for i in range(7)]
    shards = [shard_items(items, (index, 3)) for index in range(3)]
    assert sorted(item.path.name for shard in shards for item in shard) == sorted(item.path.name for item in items)
    assert [len(shard) for shard in shards] == [3, 2, 2]
    with pytest.raises(ValueError, match="0..2"):
        shard_items(items, (3, 3))


def test_two_shards_cover_every_input_once(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    inputs, _ = collect_inputs([phantom_dataset])
    runner = CliRunner()
    for index in (0, 1):
        result = runner.invoke(
            app, ["infer", str(phantom_dataset), "--model", str(trained_tiny_model), "--out", str(out), "--shard", f"{index}/2"]
        )
        assert result.exit_code == 0, result.output
        assert (out / f"summary.shard-{index}-of-2.csv").is_file()
        assert (out / "summary.csv").is_file() == (index == 1)  # merged once both shards are done
    masks = sorted(path.name for path in out.rglob("*_lesionseg.nii.gz"))
    assert len(masks) == len(inputs) == len(set(masks))
    rows = _rows(out / "summary.csv")
    assert sorted(row["input"] for row in rows) == sorted(item.label for item in inputs)
    assert all(row["status"] == "ok" for row in rows)

    rerun = runner.invoke(
        app, ["infer", str(phantom_dataset), "--model", str(trained_tiny_model), "--out", str(out), "--shard", "0/2", "--skip-existing"]
    )
    assert rerun.exit_code == 0, rerun.output
    assert {row["status"] for row in _rows(out / "summary.shard-0-of-2.csv")} == {"skipped"}
    assert len(_rows(out / "summary.csv")) == len(inputs)


def test_bad_shard_argument_is_one_line(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["infer", str(phantom_dataset), "--model", str(trained_tiny_model), "--out", str(tmp_path), "--shard", "2/2"]
    )
    assert result.exit_code == 1
    assert "--shard '2/2': I must be in 0..N-1" in result.output


def test_torchrun_ranks_shard_the_batch(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = torchrun("-m", "lesionseg", "infer", str(phantom_dataset), "--model", str(trained_tiny_model),
                      "--out", str(out), "--device", "cpu", "--no-report")
    assert result.returncode == 0, result.stderr[-3000:]
    inputs, _ = collect_inputs([phantom_dataset])
    assert len(_rows(out / "summary.shard-0-of-2.csv")) + len(_rows(out / "summary.shard-1-of-2.csv")) == len(inputs)
    assert sorted(row["input"] for row in _rows(out / "summary.csv")) == sorted(item.label for item in inputs)
    assert len(list(out.rglob("*_lesionseg.nii.gz"))) == len(inputs)
