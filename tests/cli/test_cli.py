"""The command line: help, version, synth, and one-line errors with exit code 1."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
from typer.testing import CliRunner

from lesionseg.cli.main import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "synth" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("lesionseg ")


def test_synth_writes_a_bids_dataset(tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text("synth:\n  fov_mm: [24, 30, 40]\n")
    result = runner.invoke(
        app, ["synth", str(tmp_path / "ds"), "--subjects", "2", "--contrasts", "T2w,PSIR", "--seed", "3", "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    for subject in ("sub-001", "sub-002"):
        for contrast in ("T2w", "PSIR"):
            image = nib.load(tmp_path / "ds" / subject / "anat" / f"{subject}_{contrast}.nii.gz")
            lesion = nib.load(tmp_path / "ds/derivatives/labels" / subject / "anat" / f"{subject}_{contrast}_lesion-manual.nii.gz")
            assert image.shape == lesion.shape
    assert "2 phantoms" in result.output


def test_bad_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("synth:\n  subjets: 3\n")
    result = runner.invoke(app, ["synth", str(tmp_path / "ds"), "--config", str(config)])
    assert result.exit_code == 1
    assert f"error: {config}: synth.subjets: unknown key" in result.output
    assert "Traceback" not in result.output


def test_unknown_contrast_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path / "ds"), "--contrasts", "FLAIR"])
    assert result.exit_code == 1
    assert "unknown contrast" in result.output
