"""The preprocessed-volume cache: a second run reuses entries (no decoding), a changed file or preprocessing
misses, and a cached subject equals a freshly prepared one."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from lesionseg.config import load_config
from lesionseg.data.cache import load_prepared_subjects
from lesionseg.io.bids import discover
from lesionseg.transforms.preprocessing import preprocessing
from tests.conftest import CONFIGS


def test_second_load_reuses_the_cache(phantom_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    items = discover(phantom_dataset, ["T2w"])[:2]
    config = load_config(CONFIGS / "tiny.yaml")
    prepare = preprocessing(config.preprocess)
    fresh = load_prepared_subjects(items, "lesion", prepare, description="a", cache_dir=None)
    first = load_prepared_subjects(items, "lesion", prepare, description="a", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 2

    import lesionseg.data.cache as cache

    def no_decoding(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a cached volume was decoded again")

    monkeypatch.setattr(cache, "load_subjects", no_decoding)
    with caplog.at_level(logging.INFO, logger="lesionseg.data.cache"):
        second = load_prepared_subjects(items, "lesion", prepare, description="a", cache_dir=tmp_path)
    assert "2 of 2 reused" in caplog.text
    for a, b, c in zip(fresh, first, second, strict=True):
        for key in ("image", "label"):
            assert torch.equal(a[key].data, c[key].data) and torch.equal(b[key].data, c[key].data)
            assert (a[key].affine == c[key].affine).all()
        assert c["contrast"] == "T2w" and c["stem"] == a["stem"]
    monkeypatch.undo()

    # another preprocessing, or an edited image, is a miss
    load_prepared_subjects(items, "lesion", prepare, description="b", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 4
    copy = tmp_path / "copy"
    shutil.copytree(phantom_dataset, copy)
    edited = discover(copy, ["T2w"])[:1]
    load_prepared_subjects(edited, "lesion", prepare, description="a", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 4  # same bytes elsewhere: a hit
    image = nib.load(edited[0].image)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj) + 1, image.affine, image.header), edited[0].image)
    load_prepared_subjects(edited, "lesion", prepare, description="a", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 5


def test_training_with_a_cache_dir(phantom_dataset: Path, tmp_path: Path) -> None:
    from lesionseg.training.trainer import train

    config = load_config(CONFIGS / "tiny.yaml", [f"data.cache_dir={tmp_path / 'cache'}", "train.steps=2"])
    train(config, data_root=phantom_dataset, run_dir=tmp_path / "run1")
    entries = sorted((tmp_path / "cache").glob("*.pt"))
    assert entries
    train(config, data_root=phantom_dataset, run_dir=tmp_path / "run2")
    assert sorted((tmp_path / "cache").glob("*.pt")) == entries
