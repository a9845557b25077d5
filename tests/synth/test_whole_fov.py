"""Whole-field-of-view phantoms: the body around the canal, the acquisitions hospitals send, acquisition effects,
and masks that stay exact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lesionseg.synth import acquisition
from lesionseg.synth.anatomy import sample_anatomy
from lesionseg.synth.body import sample_body
from lesionseg.synth.contrasts import body_lookup, tissue_lookup
from lesionseg.synth.randomized import random_phantom, vary_anatomy, whole_fov_anatomy, whole_fov_layout
from lesionseg.synth.tissues import COMPARTMENT_BASE, Tissue


def _neck(seed: int = 0, fov=(180.0, 160.0, 40.0)):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(seed)
    return whole_fov_anatomy(rng, sample_anatomy(rng, fov, max_lesions=3, p_no_lesion=0.0), "neck")


def _axial_plane(anatomy, spacing: float = 1.0):  # noqa: ANN001, ANN202
    x = (np.arange(int(anatomy.fov_mm[0] / spacing)) - anatomy.fov_mm[0] / spacing / 2) * spacing
    y = (np.arange(int(anatomy.fov_mm[1] / spacing)) - anatomy.fov_mm[1] / spacing / 2) * spacing
    return anatomy.render(x[:, None, None], y[None, :, None], np.array([[[0.0]]]))[..., 0]


def test_layouts_cover_the_acquisitions_hospitals_send() -> None:
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        fov, spacing, kind, region, sampled = whole_fov_layout(rng)
        seen.add((kind, region))
        if kind == "axial":
            assert 160 <= fov[0] <= 260 and 4 <= spacing[2] <= 8 and 12 <= round(fov[2] / spacing[2]) <= 30
            assert sampled[:2] == (1.0, 1.0) and 0.6 <= sampled[2] <= 1.0
        elif kind == "sagittal":
            assert 200 <= fov[2] <= 320 and 2 <= spacing[0] <= 4
        else:
            assert max(spacing) - min(spacing) < 1e-9
    assert {kind for kind, _ in seen} == {"axial", "sagittal", "isotropic"}
    assert {("sagittal", region) for region in ("neck", "thorax", "lumbar")} <= seen


def test_the_neck_holds_the_anatomy_around_the_canal() -> None:
    tissue = _axial_plane(_neck())
    present = set(np.unique(tissue).tolist())
    for expected in (Tissue.SKIN, Tissue.FAT, Tissue.MUSCLE, Tissue.BONE, Tissue.CSF, Tissue.CORD, Tissue.AIR):
        assert expected in present, expected.name
    assert Tissue.VESSEL_DARK in present or Tissue.VESSEL_BRIGHT in present
    compartments = [value for value in present if value >= COMPARTMENT_BASE]
    assert len(compartments) >= 2  # the remaining soft tissue is never one flat class
    assert Tissue.SOFT not in present  # every soft-tissue voxel belongs to a compartment


def test_the_body_never_changes_the_cord_or_the_lesions() -> None:
    anatomy = _neck(seed=3)
    bare = dataclasses.replace(anatomy, body=None)
    table = tissue_lookup("T2w", np.random.default_rng(0))
    with_body = acquisition.render(anatomy, body_lookup("T2w", table, np.random.default_rng(1)), (1.0, 1.0, 4.0))
    without = acquisition.render(bare, table, (1.0, 1.0, 4.0))
    assert np.array_equal(with_body.cord_fraction, without.cord_fraction)
    assert np.array_equal(with_body.lesion_fraction, without.lesion_fraction)
    assert with_body.lesion_fraction.any() and with_body.fat_fraction.any() and not without.fat_fraction.any()


@pytest.mark.parametrize("region", ["thorax", "lumbar"])
def test_lower_regions_have_their_own_organs(region: str) -> None:
    body = sample_body(np.random.default_rng(1), region, (9.0, 7.0), 250.0)
    assert body.outline.semi_axes_mm[0] > 100  # a trunk, not a neck
    if region == "thorax":
        assert len(body.airways) == 2  # the lungs
    else:
        assert len(body.organs) >= 3  # bowel loops


def test_a_lumbar_series_ends_the_cord_at_a_conus_above_the_cauda_equina() -> None:
    rng = np.random.default_rng(5)
    anatomy = whole_fov_anatomy(rng, sample_anatomy(rng, (40.0, 240.0, 280.0)), "lumbar")
    assert np.isfinite(anatomy.cord_start_mm) and anatomy.conus_taper_mm >= 15
    assert any(root.end_mm[2] < anatomy.cord_start_mm for root in anatomy.nerve_roots)


@pytest.mark.parametrize(("p_conus", "expected"), [(0.0, 0), (1.0, 20)])
def test_p_conus_sets_how_often_the_cord_ends_in_the_field_of_view(p_conus: float, expected: int) -> None:
    rng = np.random.default_rng(3)
    ends = [np.isfinite(vary_anatomy(rng, sample_anatomy(rng, (40.0, 56.0, 96.0)), p_conus).cord_start_mm)
            for _ in range(20)]
    assert sum(ends) == expected
    # a lumbar whole field of view shows the conus whatever p_conus says
    lumbar = whole_fov_anatomy(rng, sample_anatomy(rng, (40.0, 240.0, 280.0)), "lumbar", p_conus=0.0)
    assert np.isfinite(lumbar.cord_start_mm)


def test_the_csf_keeps_its_contrast_where_the_cord_ends_in_view() -> None:
    def faded(p_conus: float) -> list[bool]:
        drawn = (random_phantom(np.random.default_rng([7, i]), p_conus=p_conus).description for i in range(8))
        return ["CSF contrast along the canal" in d["artefacts"] for d in drawn]

    assert any(faded(0.0))  # the CSF fades on some phantoms...
    assert not any(faded(1.0))  # ...but never hides a conus


def test_wrap_around_folds_the_cut_signal_onto_the_opposite_side() -> None:
    image = np.arange(40, dtype=np.float32).reshape(10, 4, 1).repeat(3, axis=2)
    wrapped = acquisition.wrap_around(image, 0, 2)
    assert wrapped.shape == (6, 4, 3)
    assert np.isclose(wrapped.sum(), image.sum())  # nothing lost, only moved
    assert np.allclose(wrapped[-2:], image[8:10] * 0 + image[6:8] + image[0:2])
    assert np.allclose(wrapped[:2], image[2:4] + image[8:10])


def test_coil_shading_falls_off_towards_anterior() -> None:
    shaded = acquisition.coil_shading(np.ones((4, 50, 3), dtype=np.float32), (1.0, 2.0, 1.0), 60.0)
    profile = shaded[0, :, 0]
    assert profile[0] == pytest.approx(1.0) and np.all(np.diff(profile) < 0)
    assert profile[30] == pytest.approx(np.exp(-1.0), rel=1e-5)  # 60 mm anterior


def test_slice_gaps_sample_only_the_slice_itself() -> None:
    anatomy = _neck(seed=2, fov=(60.0, 60.0, 40.0))
    table = body_lookup("T2w", tissue_lookup("T2w", np.random.default_rng(0)), np.random.default_rng(0))
    full = acquisition.render(anatomy, table, (1.0, 1.0, 8.0))
    thin = acquisition.render(anatomy, table, (1.0, 1.0, 8.0), sampled_fraction=(1.0, 1.0, 0.5))
    assert full.image.shape == thin.image.shape and not np.allclose(full.image, thin.image)


def test_whole_fov_phantoms_are_reproducible_with_exact_masks() -> None:
    first = random_phantom(np.random.default_rng(11), p_whole_fov=1.0)
    again = random_phantom(np.random.default_rng(11), p_whole_fov=1.0)
    assert np.array_equal(first.image, again.image) and first.description == again.description
    assert first.description["body"] in ("neck", "thorax", "lumbar")
    assert first.cord.shape == first.image.shape == first.lesion.shape
    assert first.cord.any() and not (first.lesion & (1 - first.cord)).any()


def test_standard_phantoms_with_a_body_keep_their_masks(tmp_path) -> None:  # noqa: ANN001
    import nibabel as nib

    from lesionseg.synth.dataset import make_dataset
    from tests.conftest import tiny_synth_config

    config = tiny_synth_config(subjects=1, fov_mm=(60.0, 60.0, 30.0))
    make_dataset(tmp_path / "plain", config)
    make_dataset(tmp_path / "body", config.model_copy(update={"body": "neck"}))
    labels = "derivatives/labels/sub-001/anat/sub-001_T2w_seg-manual.nii.gz"
    plain, body = (nib.load(tmp_path / name / labels) for name in ("plain", "body"))
    assert np.array_equal(plain.get_fdata(), body.get_fdata()) and np.allclose(plain.affine, body.affine)
    images = [nib.load(tmp_path / name / "sub-001/anat/sub-001_T2w.nii.gz").get_fdata() for name in ("plain", "body")]
    assert not np.allclose(*images)  # the tissue around the canal differs


def test_csf_contrast_fades_along_the_canal_and_nothing_else_changes() -> None:
    cord, csf = 0.4, 1.0
    csf_fraction = np.zeros((6, 6, 30), dtype=np.float32)
    csf_fraction[:2] = 1.0  # CSF voxels
    csf_fraction[2] = 0.5  # half CSF, half cord (partial volume)
    image = (csf_fraction * csf + (1.0 - csf_fraction) * cord).astype(np.float32)
    faded = acquisition.csf_contrast_along_canal(image, csf_fraction, cord, csf, 0.0, np.random.default_rng(3))
    np.testing.assert_array_equal(faded[3:], image[3:])  # cord voxels untouched
    profile = faded[0, 0]  # a CSF voxel along the canal
    assert profile.min() == pytest.approx(cord, abs=1e-6) and profile.max() == pytest.approx(csf, abs=1e-6)
    assert np.all(np.abs(np.diff(profile)) < 0.35)  # smooth along the canal, not slice-to-slice noise
    np.testing.assert_allclose(faded[2, 0], (profile + cord) / 2, atol=1e-6)  # partial volume follows
    reversed_ = acquisition.csf_contrast_along_canal(image, csf_fraction, cord, csf, -0.2, np.random.default_rng(3))
    assert reversed_[0, 0].min() < cord  # below 0: the CSF darker than the cord on some slices


def test_the_top_of_the_spine_has_c2_above_its_top_disc_and_the_skull_base() -> None:
    from lesionseg.synth.anatomy import C2_HEIGHT_MM

    anatomy = dataclasses.replace(_neck(fov=(180.0, 160.0, 200.0)), top_disc_mm=30.0)
    z = np.arange(-100.0, 100.0, 0.5)
    bone, disc = anatomy.column(z)
    assert not disc[z >= 30.0].any() and disc[z < 30.0].any()  # no disc above the top one
    assert bone[(z >= 30.0) & (z < 30.0 + C2_HEIGHT_MM)].all() and not bone[z >= 30.0 + C2_HEIGHT_MM].any()
    periodic = dataclasses.replace(anatomy, top_disc_mm=np.inf).column(z)
    np.testing.assert_array_equal(disc[z < 30.0], periodic[1][z < 30.0])  # below it the spine is unchanged
    x, y = np.arange(-30.0, 30.0)[:, None, None], np.arange(-40.0, 40.0)[None, :, None]
    above = anatomy.render(x, y, np.array([[[30.0 + C2_HEIGHT_MM + 20.0]]]))
    assert (above == Tissue.BONE).any() and (above == Tissue.CORD).any()  # the skull base around the brainstem


def test_c2_is_labelled_from_the_top_disc_up_to_the_tip_of_the_dens() -> None:
    from lesionseg.synth.anatomy import C2_HEIGHT_MM, DENS_HEIGHT_MM

    anatomy = dataclasses.replace(_neck(fov=(180.0, 160.0, 200.0)), top_disc_mm=30.0)
    x, y = np.arange(-30.0, 30.0, 0.5)[:, None, None], np.arange(-40.0, 40.0, 0.5)[None, :, None]
    z = np.arange(-20.0, 90.0, 1.0)[None, None, :]
    tissue, c2 = anatomy.render(x, y, z), anatomy.c2(x, y, z)
    assert (tissue[c2] == Tissue.BONE).all()  # C2 is bone
    heights = z[0, 0][c2.any(axis=(0, 1))]
    assert heights.min() == 30.0 and heights.max() == 30.0 + C2_HEIGHT_MM - 1.0
    area = c2.sum(axis=(0, 1))
    dens = z[0, 0] >= 30.0 + C2_HEIGHT_MM - DENS_HEIGHT_MM
    assert area[dens & c2.any(axis=(0, 1))].max() < 0.7 * area[~dens & c2.any(axis=(0, 1))].min()  # the dens: narrower
    without = dataclasses.replace(anatomy, top_disc_mm=np.inf)
    assert not without.c2(x, y, z).any()


@pytest.mark.parametrize("p_whole_fov", [0.0, 1.0])
def test_neck_phantoms_reach_the_top_of_the_spine_as_often_as_asked(p_whole_fov: float) -> None:
    seed = [5, 2]  # a whole-neck axial stack when p_whole_fov is 1, a small neck phantom when it is 0
    phantom = random_phantom(np.random.default_rng(seed), p_whole_fov=p_whole_fov, p_top_of_spine=1.0)
    assert phantom.description["body"] == ("neck" if p_whole_fov else None)
    assert phantom.description["top_of_spine"] and phantom.c2.any()
    assert not phantom.disc[:, :, np.nonzero(phantom.c2)[2].min() + 1 :].any()  # no disc above C2's lower end
    never = random_phantom(np.random.default_rng(seed), p_whole_fov=p_whole_fov, p_top_of_spine=0.0)
    assert not never.description["top_of_spine"] and not never.c2.any()
