"""Domain-randomised phantoms as an on-the-fly training source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lesionseg.config import RandomizeConfig, load_config
from lesionseg.constants import IMAGE_KEY, LABEL_KEY
from lesionseg.data.generated import GeneratedSubjects
from lesionseg.errors import ConfigError
from lesionseg.inference.batch import contrast_warning
from lesionseg.inference.predictor import Predictor
from lesionseg.synth.anatomy import Tissue
from lesionseg.synth.randomized import random_intensities, random_phantom
from lesionseg.training.trainer import train
from lesionseg.transforms.preprocessing import preprocessing
from tests.conftest import CONFIGS


def test_phantoms_are_reproducible_and_varied() -> None:
    first = random_phantom(np.random.default_rng([4, 0]))
    again = random_phantom(np.random.default_rng([4, 0]))
    np.testing.assert_array_equal(first.image, again.image)
    drawn = [random_phantom(np.random.default_rng([4, i])) for i in range(12)]
    descriptions = [p.description for p in drawn]
    contrasts = {d["contrast"] for d in descriptions}
    assert "random" in contrasts and contrasts - {"random"}  # random intensities and known contrasts
    assert {d["resolution"] for d in descriptions} == {"isotropic", "sagittal", "axial"}
    assert len({p.image.shape for p in drawn}) == len(drawn)  # field of view and spacing vary
    assert any(d["conus"] for d in descriptions) and not all(d["conus"] for d in descriptions)
    assert any(d["nerve_roots"] for d in descriptions) and not all(d["nerve_roots"] for d in descriptions)
    for phantom in drawn:
        assert phantom.cord.any()
        assert not (phantom.lesion & (1 - phantom.cord)).any()  # lesions lie in the cord


def test_random_intensities_keep_the_cord_and_lesions_visible() -> None:
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(300):
        table, signed, contrast = random_intensities(rng, p_known_contrast=0.3)
        kinds.add((contrast, signed))
        if contrast == "random":
            assert abs(table[Tissue.CORD] - table[Tissue.CSF]) >= 0.25
            assert abs(table[Tissue.LESION] - table[Tissue.CORD]) >= 0.05
            # lesions move towards the CSF's intensity (water-rich), never away from it
            assert (table[Tissue.LESION] - table[Tissue.CORD]) * (table[Tissue.CSF] - table[Tissue.CORD]) > 0
            # mimics in the cord lie between cord and lesion: less conspicuous than lesions
            assert abs(table[Tissue.CORD_MIMIC] - table[Tissue.CORD]) < abs(table[Tissue.LESION] - table[Tissue.CORD])
    assert {("random", True), ("random", False), ("T2w", False), ("T1w", False), ("PSIR", True), ("T2starw", False)} <= kinds
    # lesions brighter and darker than the cord both occur (as the CSF is brighter or darker)
    tables = [random_intensities(rng, 0.0)[0] for _ in range(50)]
    signs = {np.sign(table[Tissue.LESION] - table[Tissue.CORD]) for table in tables}
    assert len(signs) >= 2


def test_known_contrasts_can_be_restricted_to_one() -> None:
    rng = np.random.default_rng(1)
    drawn = {random_intensities(rng, 1.0, ["PSIR"])[1:] for _ in range(20)}
    assert drawn == {(True, "PSIR")}
    phantom = random_phantom(np.random.default_rng([2, 0]), p_known_contrast=1.0, contrasts=["T1w"])
    assert phantom.description["contrast"] == "T1w"
    assert RandomizeConfig().contrasts == ["T2w", "T1w", "PSIR", "T2starw"]
    with pytest.raises(ValueError, match="unknown contrast"):
        RandomizeConfig(contrasts=["FLAIR"])


def test_t2starw_grey_matter_is_brighter_than_the_cord_and_darker_than_lesions() -> None:
    """As on real gradient-echo scans: the grey matter stands out (1.2-1.38 times the white matter), lesions more."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        table = random_intensities(rng, 1.0, ["T2starw"])[0]
        assert 1.19 * table[Tissue.CORD] < table[Tissue.GREY_MATTER] < table[Tissue.LESION] < table[Tissue.CSF] * 1.06


def test_generated_subjects_are_prepared_and_seeded() -> None:
    config = load_config(CONFIGS / "tiny.yaml", ["data.target=cord"])
    prepare = preprocessing(config.preprocess)
    dataset = GeneratedSubjects(RandomizeConfig(), seed=3, count=2, target="cord", prepare=prepare,
                                extra_labels=("lesion",))
    assert len(dataset) == 2
    subject = dataset[1]
    assert np.allclose(subject[IMAGE_KEY].spacing, (1.5, 1.5, 1.5))
    assert subject[IMAGE_KEY].data.shape == subject[LABEL_KEY].data.shape == subject["lesion"].data.shape
    assert set(np.unique(subject[LABEL_KEY].data.numpy())) == {0, 1}
    assert json.loads(subject["phantom"])["resolution"] in {"isotropic", "sagittal", "axial"}
    np.testing.assert_array_equal(subject[IMAGE_KEY].data, dataset[1][IMAGE_KEY].data)
    with pytest.raises(IndexError):
        dataset[2]
    conus = {p: json.loads(GeneratedSubjects(RandomizeConfig(p_conus=p), seed=3, count=1, target="cord",
                                             prepare=prepare)[0]["phantom"])["conus"] for p in (0.0, 1.0)}
    assert conus == {0.0: False, 1.0: True}  # randomize.p_conus reaches the generator


def test_training_on_randomized_phantoms_validates_on_the_dataset(phantom_dataset: Path, tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny.yaml", [
        "data.target=cord", "randomize.enabled=true", "randomize.subjects_per_epoch=2", "train.steps=6",
        "train.val_every=3",
    ])
    result = train(config, data_root=phantom_dataset, run_dir=tmp_path)
    split = json.loads((tmp_path / "split.json").read_text())
    assert split["train"] == [] and len(split["val"]) == 4  # every T2w phantom of the dataset validates
    assert result.steps == 6 and result.best_val_dice is not None
    metadata = json.loads((result.model_dir / "metadata.json").read_text())
    assert metadata["training_source"].startswith("domain-randomised phantoms") and metadata["contrast_agnostic"]
    # a contrast-agnostic model gives no "other contrast" warning
    assert contrast_warning(Predictor.from_model(result.model_dir, device="cpu"), "T2starw") == ""
    with pytest.raises(ConfigError, match="randomize"):
        train(load_config(CONFIGS / "tiny.yaml", ["randomize.enabled=true", "fp_reduction.first_model=x"]),
              data_root=phantom_dataset, run_dir=tmp_path / "fp")
