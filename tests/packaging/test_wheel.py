"""The package works when pip-installed: a wheel built from this checkout, installed into a fresh virtual
environment outside it, finds its shipped configs and models and segments a phantom with the default model.

The fresh environment gets lesionseg only from the wheel; its dependencies come from the test environment's
site-packages through a ``.pth`` line (no network at test time, and no second copy of torch).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(command: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "lesionseg"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "build", "demo-output",
                                                                 "runs", "__pycache__", ".pytest_cache"))
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)], cwd=out)
    [built] = out.glob("lesionseg-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_configs_and_models(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "lesionseg/configs/demo.yaml" in names and "lesionseg/configs/tiny.yaml" in names
    for stage in ("localizer", "cord", "cord-T2starw", "lesion", "lesion-T2w", "lesion-T2starw"):
        assert f"lesionseg/models/cascade-synth-v6/{stage}/model.pt" in names
        assert f"lesionseg/models/cascade-synth-v6/{stage}/MODEL_CARD.md" in names
    assert not any(name.startswith("tests/") for name in names)


@pytest.mark.slow
def test_installed_wheel_segments_a_phantom_with_the_default_model(wheel: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=tmp_path)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, monai, ... only
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import lesionseg; print(lesionseg.__file__)"], cwd=work).stdout.strip()
    assert where.startswith(str(venv)), where  # the wheel's copy, not this checkout
    lesionseg = str(venv / "bin" / "lesionseg")
    listing = _run([lesionseg, "models"], cwd=work)
    assert "cascade-synth-v6 (default)" in listing.stdout
    scan = phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz"
    result = _run([lesionseg, "infer", str(scan), "--out", str(work / "out"), "--device", "cpu"], cwd=work)
    assert "1 ok, 0 failed" in result.stderr
    assert (work / "out/sub-001_T2w_lesionseg.nii.gz").is_file() and (work / "out/sub-001_T2w_seg.nii.gz").is_file()
    help_text = _run([lesionseg, "train", "--help"], cwd=work).stdout
    assert "shipped config" in help_text
