"""Comparing runs: paired differences and the Wilcoxon signed-rank test."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.evaluation.compare import compare_reports, wilcoxon_p
from lesionseg.evaluation.evaluate import evaluate_folder


def _save(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.uint8), np.eye(4)), path)


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(8):
        truth = np.zeros((12, 12, 12))
        truth[2:8, 2:8, 2:8] = 1
        good = truth.copy()
        good[2:8, 2:8, 2 : 2 + int(rng.integers(0, 2))] = 0  # nearly perfect
        bad = truth.copy()
        bad[2:8, 2:8, 2 : 4 + int(rng.integers(0, 2))] = 0  # misses more
        _save(tmp_path / f"gt/sub-{i:02d}_T2w_lesion-manual.nii.gz", truth)
        _save(tmp_path / f"good/sub-{i:02d}_T2w_lesionseg.nii.gz", good)
        _save(tmp_path / f"bad/sub-{i:02d}_T2w_lesionseg.nii.gz", bad)
    return tmp_path


def test_better_run_has_positive_difference_and_small_p(two_runs: Path) -> None:
    reports = {name: evaluate_folder(two_runs / name, two_runs / "gt") for name in ("bad", "good")}
    rows = {row.metric: row for row in compare_reports(reports)}
    dice = rows["dice"]
    assert dice.baseline == "bad" and dice.run == "good" and dice.n_pairs == 8
    assert dice.mean_difference > 0.1
    assert dice.wilcoxon_p < 0.01
    assert math.isnan(rows["anima_fp_pred"].wilcoxon_p)  # no difference at all


def test_wilcoxon_edge_cases() -> None:
    assert math.isnan(wilcoxon_p(np.zeros(5)))
    assert math.isnan(wilcoxon_p(np.array([0.3])))
    assert 0 < wilcoxon_p(np.array([0.1, 0.2, -0.05, 0.3, 0.15])) < 1


def test_cli_compare_writes_tables(two_runs: Path) -> None:
    result = CliRunner().invoke(
        app, ["evaluate", "--gt", str(two_runs / "gt"), "--compare", str(two_runs / "bad"), "--compare", str(two_runs / "good"), "--out", str(two_runs / "cmp")]
    )
    assert result.exit_code == 0, result.output
    assert "Wilcoxon p" in result.output
    assert (two_runs / "cmp/compare.csv").read_text().startswith("metric,baseline,run")
    assert (two_runs / "cmp/good/metrics.json").is_file()


def test_cli_evaluate_writes_html(two_runs: Path) -> None:
    out = two_runs / "report"
    result = CliRunner().invoke(app, ["evaluate", "--gt", str(two_runs / "gt"), "--pred", str(two_runs / "good"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "anima_f1" in page and "Research use" in page


def test_cli_unknown_preset(two_runs: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--gt", str(two_runs / "gt"), "--pred", str(two_runs / "good"), "--preset", "msseg"])
    assert result.exit_code == 1 and "unknown" in result.output
