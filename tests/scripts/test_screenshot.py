"""The inference HTML report renders in headless Chromium (skipped where Chromium is not installed)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot.py"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_chromium(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from lesionseg.cli.main import app

    result = CliRunner().invoke(
        app, ["infer", str(phantom_dataset / "sub-002/anat/sub-002_T2w.nii.gz"), "--model", str(trained_tiny_model),
              "--out", str(tmp_path), "--threshold", "0.2", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    spec = importlib.util.spec_from_file_location("screenshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    png = module.screenshot(tmp_path / "sub-002_T2w_report.html", tmp_path / "report.png", width=900, height=900)
    pixels = np.asarray(Image.open(png).convert("L"))
    assert pixels.shape == (900, 900)
    assert pixels.std() > 10  # text and pictures, not a blank page
