"""Shared fixtures: small phantoms written to temporary folders, and the real scans in ../shared."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lesionseg.config import AcquisitionConfig, SynthConfig

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"

#: (image, cord mask) pairs of the real scans, relative to REAL_DATA.
REAL_SCANS = [
    ("sct-errsm30/t2/t2.nii.gz", "sct-errsm30/t2/t2_seg-manual.nii.gz"),
    ("sct-errsm30/t1/t1w.nii.gz", "sct-errsm30/t1/t1w_seg-manual.nii.gz"),
    ("sct-errsm30/t2s/t2s.nii.gz", "sct-errsm30/t2s/t2s_seg.nii.gz"),
    ("pam50-small/PAM50_small_t2.nii.gz", "pam50-small/PAM50_small_cord.nii.gz"),
]


def real_path(relative: str) -> Path:
    """A file of ../shared/data/real, skipping the test when the folder is absent."""
    path = REAL_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def tiny_synth_config(**changes) -> SynthConfig:
    """A phantom config small enough for unit tests (about 20k voxels per image)."""
    values = dict(
        subjects=3,
        contrasts=["T2w"],
        seed=7,
        fov_mm=(30.0, 36.0, 60.0),
        acquisition={
            "T2w": AcquisitionConfig(spacing_mm=(3.0, 1.0, 1.0)),
            "T1w": AcquisitionConfig(spacing_mm=(1.5, 1.5, 1.5)),
            "PSIR": AcquisitionConfig(spacing_mm=(1.0, 1.0, 3.0)),
            "T2starw": AcquisitionConfig(spacing_mm=(1.0, 1.0, 3.0)),
        },
    )
    values.update(changes)
    return SynthConfig(**values)


def file_digests(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative path -> digest), leaving out paths with a part in
    ``skip``: to show that nothing was replaced."""
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not set(p.relative_to(folder).parts) & set(skip)
    }


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Write ``data`` as NIfTI (identity affine by default) and return the path."""
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), path)
    return path


@pytest.fixture(scope="session")
def phantom_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-subject, 3-contrast phantom BIDS dataset, made once per test session."""
    from lesionseg.synth.dataset import make_dataset

    root = tmp_path_factory.mktemp("phantoms")
    make_dataset(root, tiny_synth_config(subjects=4, contrasts=["T2w", "T1w", "PSIR"]))
    return root


CONFIGS = Path(__file__).resolve().parents[1] / "lesionseg" / "configs"


@pytest.fixture(autouse=True)
def _user_models_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read or write the real user model folder."""
    from lesionseg.io.registry import USER_MODELS_ENV

    monkeypatch.setenv(USER_MODELS_ENV, str(tmp_path_factory.mktemp("user-models")))


@pytest.fixture(scope="session")
def trained_tiny_model(tmp_path_factory: pytest.TempPathFactory, phantom_dataset: Path) -> Path:
    """A model folder trained for a few steps with configs/tiny.yaml (shared by inference and CLI tests)."""
    from lesionseg.config import load_config
    from lesionseg.training.trainer import train

    run = tmp_path_factory.mktemp("tiny_run")
    result = train(load_config(CONFIGS / "tiny.yaml"), data_root=phantom_dataset, run_dir=run)
    return result.model_dir


@pytest.fixture(scope="session")
def trained_tiny_cord_model(tmp_path_factory: pytest.TempPathFactory, phantom_dataset: Path) -> Path:
    """A cord model trained for 60 steps with configs/tiny.yaml: cord Dice about 0.75 on the phantoms, enough
    to check that other engines and precisions keep the reference path's Dice."""
    from lesionseg.config import load_config
    from lesionseg.training.trainer import train

    config = load_config(CONFIGS / "tiny.yaml", ["data.target=cord", "train.steps=60", "train.val_every=30"])
    return train(config, data_root=phantom_dataset, run_dir=tmp_path_factory.mktemp("cord_run")).model_dir
