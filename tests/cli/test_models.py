"""Shipped models: the registry, ``lesionseg models``, and ``lesionseg infer`` without a model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lesionseg.cli.main import app
from lesionseg.io.checkpoint import CARD_FILE, verify_models
from lesionseg.io.registry import DEFAULT_MODEL, MODELS_ENV, models_dir, resolve_model, shipped_models
from lesionseg.errors import ModelError


def test_infer_without_a_model_and_no_default_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["infer", str(tmp_path)])
    assert result.exit_code == 1 and "--model" in result.output and DEFAULT_MODEL in result.output


def test_the_default_cascade_is_used_without_a_model(
    trained_tiny_cord_model: Path, trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shelf = tmp_path / "models"
    for stage, folder in (("cord", trained_tiny_cord_model), ("lesion", trained_tiny_model)):
        shutil.copytree(folder, shelf / DEFAULT_MODEL / stage)
    (shelf / DEFAULT_MODEL / CARD_FILE).write_text("# A test cascade\n\nResearch use only.\n")
    lesion_config = shelf / DEFAULT_MODEL / "lesion" / "config.yaml"  # TTA on by the model, as in the shipped one
    lesion_config.write_text(lesion_config.read_text().replace("  tta: false\n", "  tta: true\n", 1))
    monkeypatch.setenv(MODELS_ENV, str(shelf))
    [model] = shipped_models()
    assert model.name == DEFAULT_MODEL and model.stages == ("cord", "lesion") and model.title == "A test cascade"
    assert resolve_model(DEFAULT_MODEL) == shelf / DEFAULT_MODEL
    with pytest.raises(ModelError, match="no such model"):
        resolve_model("not-a-model")

    listing = CliRunner().invoke(app, ["models"])
    assert listing.exit_code == 0 and DEFAULT_MODEL in listing.output and "(default)" in listing.output
    shown = CliRunner().invoke(app, ["models", "show", DEFAULT_MODEL])
    assert shown.exit_code == 0 and "A test cascade" in shown.output

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", str(phantom_dataset / "sub-001"), "--out", str(out), "--no-report"])
    assert result.exit_code == 0, result.output
    assert len(list(out.rglob("*_seg.nii.gz"))) == 3 and len(list(out.rglob("*_lesionseg.nii.gz"))) == 3
    assert "flip TTA" in (out / "summary.csv").read_text()  # the lesion rule says how the probabilities were made
    by_name = CliRunner().invoke(
        app, ["infer", str(phantom_dataset / "sub-001"), "--model", DEFAULT_MODEL, "--out", str(tmp_path / "o2"),
              "--no-report", "--no-tta"]
    )
    assert by_name.exit_code == 0, by_name.output
    assert "flip TTA" not in (tmp_path / "o2" / "summary.csv").read_text()  # the user turned it off


SHIPPED = shipped_models(models_dir())


@pytest.mark.skipif(not SHIPPED, reason="no shipped model in models/")
@pytest.mark.parametrize("model", SHIPPED, ids=lambda m: m.name)
def test_shipped_models_are_small_carded_and_intact(model) -> None:  # noqa: ANN001
    verified = verify_models([model.path])  # every stage's weights match the SHA-256 in its card
    assert len(verified) == len(model.stages)
    for folder in verified:
        assert (folder / "model.pt").stat().st_size < 20 * 2**20
        card = (folder / CARD_FILE).read_text(encoding="utf-8")
        assert "Research use only" in card and "SHA-256 (model.pt)" in card
    assert "Not a medical device" in model.card


def test_models_install_checks_the_checksum_and_makes_a_name(trained_tiny_model: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    from lesionseg.io.registry import user_models_dir

    result = CliRunner().invoke(app, ["models", "install", str(trained_tiny_model), "--name", "site-t2w"])
    assert result.exit_code == 0, result.output
    assert (user_models_dir() / "site-t2w/model.pt").is_file() and resolve_model("site-t2w") == user_models_dir() / "site-t2w"
    assert "site-t2w" in CliRunner().invoke(app, ["models"]).output
    again = CliRunner().invoke(app, ["models", "install", str(trained_tiny_model), "--name", "site-t2w"])
    assert again.exit_code == 1 and "already shipped or installed" in again.output
    tampered = tmp_path / "tampered"
    shutil.copytree(trained_tiny_model, tampered)
    weights = bytearray((tampered / "model.pt").read_bytes())
    weights[len(weights) // 2] ^= 0xFF  # one flipped byte
    (tampered / "model.pt").write_bytes(bytes(weights))
    refused = CliRunner().invoke(app, ["models", "install", str(tampered)])
    assert refused.exit_code == 1 and "SHA-256" in refused.output and not (user_models_dir() / "tampered").exists()
    out = tmp_path / "out"
    used = CliRunner().invoke(app, ["infer", str(phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz"), "--model", "site-t2w",
                                    "--out", str(out), "--no-report", "--device", "cpu"])
    assert used.exit_code == 0, used.output
