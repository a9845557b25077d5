"""Phantoms: determinism, anatomy, lesions, contrast ordering, acquisition geometry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from lesionseg.io.bids import discover
from lesionseg.io.nifti import load_image, load_label_for
from lesionseg.synth.acquisition import render
from lesionseg.synth.anatomy import NerveRoot, Tissue, sample_anatomy
from lesionseg.synth.dataset import make_dataset, make_phantom, subject_rng
from lesionseg.transforms.postprocessing import count_components
from tests.conftest import tiny_synth_config


def test_layout_and_masks_align(phantom_dataset: Path) -> None:
    images = discover(phantom_dataset, ["T2w", "T1w", "PSIR"])
    assert len(images) == 12
    for item in images:
        assert item.lesion is not None and item.cord is not None
        scan = load_image(item.image)  # valid: finite, not constant
        lesion = load_label_for(scan, item.lesion)  # same grid, binary
        cord = load_label_for(scan, item.cord)
        assert np.all(cord.data[lesion.data > 0] == 1), f"{item.stem}: lesion voxels outside the cord"
        assert 300 < cord.data.sum()
    assert (phantom_dataset / "dataset_description.json").is_file()
    assert (phantom_dataset / "participants.tsv").read_text().startswith("participant_id")


def test_same_seed_same_dataset_and_subjects_independent_of_count(tmp_path: Path) -> None:
    make_dataset(tmp_path / "a", tiny_synth_config(subjects=2))
    make_dataset(tmp_path / "b", tiny_synth_config(subjects=3))
    make_dataset(tmp_path / "c", tiny_synth_config(subjects=2, seed=8))
    name = "sub-002/anat/sub-002_T2w.nii.gz"
    a, b, c = (np.asanyarray(nib.load(tmp_path / d / name).dataobj) for d in "abc")
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_anisotropic_spacing_and_random_orientation(phantom_dataset: Path) -> None:
    spacings, orientations = set(), set()
    for item in discover(phantom_dataset, ["T2w", "PSIR"]):
        image = nib.load(item.image)
        spacings.add(tuple(sorted(np.round(image.header.get_zooms()[:3], 3))))
        orientations.add(nib.aff2axcodes(image.affine))
    assert (1.0, 1.0, 3.0) in spacings
    assert len(orientations) > 2


def test_lesion_count_range_and_lesion_free_subjects() -> None:
    counts = [len(sample_anatomy(subject_rng(0, i), (40, 56, 96), max_lesions=6, p_no_lesion=0.15).lesions) for i in range(60)]
    assert min(counts) == 0 and max(counts) <= 6 and len(set(counts)) >= 5
    for i in range(20):
        for lesion in sample_anatomy(subject_rng(1, i), (40, 56, 96)).lesions:
            length_mm = 2 * lesion.semi_axes_mm[2]
            assert 3.0 <= length_mm <= 15.0
            assert lesion.semi_axes_mm[2] >= max(lesion.semi_axes_mm[:2]) * 0.5  # elongated along the cord


def test_cord_cross_section_size() -> None:
    anatomy = sample_anatomy(subject_rng(0, 0), (40, 56, 96), max_lesions=0)
    x = np.arange(-20, 20, 0.1)[:, None, None]
    y = np.arange(-28, 28, 0.1)[None, :, None]
    tissue = anatomy.render(x, y, np.zeros((1, 1, 1)))[:, :, 0]
    cord = tissue == Tissue.CORD
    width_lr = cord.any(axis=1).sum() * 0.1
    width_ap = cord.any(axis=0).sum() * 0.1
    assert 9.0 < width_lr < 15.0 and 6.0 < width_ap < 10.0
    assert (tissue == Tissue.CSF).any() and (tissue == Tissue.SOFT).any()


def test_conus_tapers_and_nerve_roots_stay_outside_the_cord() -> None:
    anatomy = dataclasses.replace(
        sample_anatomy(subject_rng(0, 0), (40, 56, 96), max_lesions=0), cord_start_mm=-30.0, conus_taper_mm=20.0
    )
    x = np.arange(-20, 20, 0.25)[:, None, None]
    y = np.arange(-28, 28, 0.25)[None, :, None]
    z = np.array([-35.0, -29.0, -25.0, -5.0, 0.0])[None, None, :]
    areas = [(anatomy.render(x, y, z)[..., k] == Tissue.CORD).sum() for k in range(z.shape[2])]
    assert areas[0] == 0 and 0 < areas[1] < areas[2] < areas[3]  # no cord below the tip; it widens upwards
    assert areas[3] == pytest.approx(areas[4], rel=0.15)  # full width above the taper
    # a root from the cord's side across the canal, and one running down through the middle of the cord
    a, margin = anatomy.cord_semi_axes_mm[0], anatomy.csf_margin_mm[0]
    across = NerveRoot((0.8 * a, 0.0, 10.0), (a + margin, 0.0, 4.0), 0.6)
    through = NerveRoot((0.0, 0.0, 40.0), (0.0, 0.0, -48.0), 0.8)
    with_roots = dataclasses.replace(anatomy, nerve_roots=(across, through))
    plain, rooted = anatomy.render(x, y, z[..., [0, 3, 4]]), with_roots.render(x, y, z[..., [0, 3, 4]])
    changed = plain != rooted
    assert (rooted[changed] == Tissue.NERVE_ROOT).all() and (plain[changed] == Tissue.CSF).all()  # only CSF
    assert (rooted == Tissue.NERVE_ROOT)[..., 0].any()  # the middle root below the conus's tip...
    assert not (rooted == Tissue.NERVE_ROOT)[..., 2].any()  # ...is hidden by the cord above it
    lateral = NerveRoot((0.8 * a, 0.0, 40.0), (a + margin, 0.0, -40.0), 0.6)
    scans = [
        render(dataclasses.replace(anatomy, nerve_roots=roots), np.arange(11.0), (1.0, 1.0, 2.0))
        for roots in ((), (lateral,))
    ]
    np.testing.assert_array_equal(scans[0].cord_fraction, scans[1].cord_fraction)  # roots are never cord
    assert (scans[0].image != scans[1].image).any()


def _tissue_means(contrast: str) -> dict[str, float]:
    config = tiny_synth_config(contrasts=[contrast])
    anatomy = sample_anatomy(subject_rng(5, 0), config.fov_mm, max_lesions=6, p_no_lesion=0.0)
    phantom = make_phantom(anatomy, contrast, config.acquisition[contrast], subject_rng(5, 0, 9), random_orientation=False)
    image = phantom.image.astype(np.float64)
    lesion = phantom.lesion > 0
    cord_only = ndimage.binary_erosion(phantom.cord > 0) & ~ndimage.binary_dilation(lesion)  # away from partial volume
    csf = ndimage.binary_dilation(phantom.cord > 0, iterations=2) & ~ndimage.binary_dilation(phantom.cord > 0)
    return {"cord": image[cord_only].mean(), "lesion": image[lesion].mean(), "ring": image[csf].mean()}


def test_contrast_t2w_csf_bright_lesions_hyperintense() -> None:
    means = _tissue_means("T2w")
    assert means["lesion"] > 1.2 * means["cord"]
    assert means["ring"] > means["cord"]


def test_contrast_t1w_csf_dark_lesions_faintly_hypointense() -> None:
    means = _tissue_means("T1w")
    assert means["ring"] < means["cord"]
    assert 0.7 * means["cord"] < means["lesion"] < 0.97 * means["cord"]


def test_contrast_psir_signed_csf_negative_lesions_darker() -> None:
    means = _tissue_means("PSIR")
    assert means["ring"] < 0 < means["cord"]
    assert means["lesion"] < 0.8 * means["cord"]


def test_contrast_t2starw_csf_bright_lesions_hyperintense() -> None:
    means = _tissue_means("T2starw")
    assert means["lesion"] > 1.3 * means["cord"]
    assert means["ring"] > means["cord"]


def test_masks_keep_lesions_at_thick_slices() -> None:
    config = tiny_synth_config()
    anatomy = sample_anatomy(subject_rng(2, 0), config.fov_mm, max_lesions=4, p_no_lesion=0.0)
    phantom = make_phantom(anatomy, "T2w", config.acquisition["T2w"], subject_rng(2, 0, 1))
    assert 1 <= count_components(phantom.lesion) <= len(anatomy.lesions)


def test_dtypes_match_contrast(phantom_dataset: Path) -> None:
    assert nib.load(phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz").get_data_dtype() == np.int16
    psir = nib.load(phantom_dataset / "sub-001/anat/sub-001_PSIR.nii.gz")
    assert psir.get_data_dtype() == np.float32 and psir.get_fdata().min() < 0


@pytest.mark.parametrize("contrast", ["T2w", "T1w", "PSIR"])
def test_contrasts_share_anatomy(phantom_dataset: Path, contrast: str) -> None:
    """All contrasts of a subject carry the same lesions: lesion volumes in mm3 agree within partial volume."""
    volumes = {}
    for c in ("T2w", "T1w", "PSIR"):
        label = nib.load(phantom_dataset / f"derivatives/labels/sub-003/anat/sub-003_{c}_seg-manual.nii.gz")
        volumes[c] = label.get_fdata().sum() * np.prod(label.header.get_zooms()[:3])
    assert volumes[contrast] == pytest.approx(np.mean(list(volumes.values())), rel=0.15)


def test_mimics_change_the_image_but_never_the_masks() -> None:
    config = tiny_synth_config()
    plain = sample_anatomy(subject_rng(3, 0), config.fov_mm, max_lesions=4, p_no_lesion=0.0)
    mimicked = sample_anatomy(subject_rng(3, 0), config.fov_mm, max_lesions=4, p_no_lesion=0.0, max_mimics=6)
    assert mimicked.mimics and not plain.mimics
    assert mimicked.lesions == plain.lesions and mimicked.cord_semi_axes_mm == plain.cord_semi_axes_mm
    assert {m.in_cord for m in mimicked.mimics} == {True, False}
    before = make_phantom(plain, "T2w", config.acquisition["T2w"], subject_rng(3, 0, 1), random_orientation=False)
    after = make_phantom(mimicked, "T2w", config.acquisition["T2w"], subject_rng(3, 0, 1), random_orientation=False)
    np.testing.assert_array_equal(after.lesion, before.lesion)
    np.testing.assert_array_equal(after.cord, before.cord)
    changed = after.image != before.image
    assert changed.any()
    # soft-tissue mimics are as bright as lesions and lie outside the cord
    outside = changed & ~ndimage.binary_dilation(after.cord > 0, iterations=3)
    assert outside.any()
    lesion_mean = after.image[after.lesion > 0].mean()
    assert after.image[outside].max() > 0.8 * lesion_mean


@pytest.mark.parametrize(("contrast", "darker"), [("T1w", True), ("PSIR", True), ("T2starw", False)])
def test_grey_matter_changes_the_cord_centre_but_never_the_masks(contrast: str, darker: bool) -> None:
    """``synth.grey_matter``: the butterfly darker than the white matter on T1w and PSIR, brighter on T2starw."""
    config = tiny_synth_config(contrasts=[contrast])
    plain = sample_anatomy(subject_rng(3, 0), config.fov_mm, max_lesions=0, p_no_lesion=1.0)
    grey = dataclasses.replace(plain, grey_matter=True)
    before, after = (make_phantom(anatomy, contrast, config.acquisition[contrast], subject_rng(3, 0, 4),
                                  random_orientation=False) for anatomy in (plain, grey))
    np.testing.assert_array_equal(after.cord, before.cord)
    changed = after.image != before.image
    assert changed.any() and not (changed & ~ndimage.binary_dilation(before.cord > 0, iterations=2)).any()
    assert (after.image[changed].mean() < before.image[changed].mean()) == darker


def test_disc_labels_are_the_phantoms_discs_one_vertebra_apart(phantom_dataset: Path) -> None:
    from lesionseg.analysis.discs import find_discs
    from lesionseg.io.nifti import load_image, load_label_for

    labels = phantom_dataset / "derivatives/labels/sub-001/anat"
    image = load_image(phantom_dataset / "sub-001/anat/sub-001_T1w.nii.gz")  # 1 mm isotropic
    discs = load_label_for(image, labels / "sub-001_T1w_disc-manual.nii.gz").data
    cord = load_label_for(image, labels / "sub-001_T1w_seg-manual.nii.gz").data
    assert not (discs & cord).any()
    gaps = -np.diff(find_discs(discs, cord, image.spacing_mm)) * image.spacing_mm[2]
    assert len(gaps) >= 2 and np.all((gaps > 16.0) & (gaps < 22.0))  # the vertebra period is drawn in 17-21 mm
    assert np.ptp(gaps) <= 2.0
