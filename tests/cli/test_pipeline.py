"""train -> infer -> evaluate through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from tests.conftest import CONFIGS

runner = CliRunner()


@pytest.mark.slow
def test_train_infer_evaluate(phantom_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(CONFIGS / "tiny.yaml"), "--data", str(phantom_dataset), "--out", str(run), "--set", "train.steps=6", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert (run / "model/model.pt").is_file() and (run / "best.pt").is_file() and (run / "last.pt").is_file()
    assert "best val Dice" in result.output

    result = runner.invoke(app, ["train", str(CONFIGS / "tiny.yaml"), "--data", str(phantom_dataset), "--out", str(run), "--set", "train.steps=8", "--resume"])
    assert result.exit_code == 0, result.output
    assert "trained steps 6->8" in result.output

    out = tmp_path / "pred"
    result = runner.invoke(app, ["infer", str(phantom_dataset), "--model", str(run / "model"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.rglob("*_lesionseg.nii.gz"))) == 12
    assert (out / "summary.csv").is_file()

    result = runner.invoke(app, ["evaluate", "--pred", str(out), "--gt", str(phantom_dataset), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    assert "mean" in result.output and (tmp_path / "eval/metrics.csv").is_file()
    page = (tmp_path / "eval/report.html").read_text()
    assert "Worst cases" in page and "Per contrast" in page


def test_infer_with_a_bad_file_exits_1(trained_tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad_T2w.nii.gz"
    bad.write_bytes(b"\x00" * 10)
    result = runner.invoke(app, ["infer", str(bad), "--model", str(trained_tiny_model), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"error: {bad}: not a readable NIfTI file" in result.output
    assert "Traceback" not in result.output


def test_infer_with_a_missing_model_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["infer", str(tmp_path), "--model", str(tmp_path / "nope.pt")])
    assert result.exit_code == 1
    assert "nope.pt: no such model folder or model name" in result.output


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    for command in ("synth", "train", "infer", "evaluate"):
        assert command in result.output
