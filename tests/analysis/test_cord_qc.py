"""Label-free cord checks: coverage of axial slices, gaps, components and tilt-corrected cross-sectional area."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lesionseg.analysis.cord_qc import (
    component_count,
    cord_coverage,
    coverage_warning,
    cross_sectional_areas_mm2,
    median_csa_mm2,
)
from tests.conftest import real_path


def _tube(shape=(40, 40, 30), radius=4.0, slope=0.0) -> np.ndarray:  # noqa: ANN001
    x, y, z = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    centre = 12 + slope * z
    return (((x - centre) ** 2 + (y - 20) ** 2) <= radius**2).astype(np.uint8)


def test_coverage_counts_slices_gaps_and_split_slices() -> None:
    cord = _tube()
    cord[:, :, 10:12] = 0  # a gap of two slices
    cord[:, :, 25:] = 0
    cord[30:33, 30:33, 5] = 1  # a second blob on slice 5
    coverage = cord_coverage(cord)
    assert (coverage.slices, coverage.with_cord, coverage.gaps) == (30, 23, 2)
    assert coverage.multi_component_slices == 1
    assert component_count(cord) == 3  # the gap splits the tube; the blob is the third
    assert cord_coverage(np.zeros((5, 5, 5))).with_cord == 0


def test_coverage_counts_the_empty_slices_below_and_above_the_cord() -> None:
    cord = _tube()
    cord[:, :, :3] = 0
    cord[:, :, 26:] = 0
    coverage = cord_coverage(cord)
    assert (coverage.with_cord, coverage.below, coverage.above) == (23, 3, 4)
    assert (cord_coverage(_tube()).below, cord_coverage(_tube()).above) == (0, 0)
    assert (cord_coverage(np.zeros((5, 5, 5))).below, cord_coverage(np.zeros((5, 5, 5))).above) == (5, 0)


def test_an_axial_stack_whose_cord_stops_short_of_its_ends_is_warned_about() -> None:
    cord = _tube()
    cord[:, :, 28:] = 0
    stack, iso = (0.8, 0.8, 5.0), (1.0, 1.0, 1.0)
    warning = coverage_warning(cord_coverage(cord), stack)
    assert warning.startswith("cord found on 28 of 30 axial slices, not on the 2 highest:")
    cord[:, :, :1] = 0
    assert "not on the 1 lowest and the 2 highest" in coverage_warning(cord_coverage(cord), stack)
    assert coverage_warning(cord_coverage(cord), iso) == ""  # a sagittal or 3D image: the cord may end in view
    assert coverage_warning(cord_coverage(_tube()), stack) == ""  # the cord on every slice
    assert coverage_warning(cord_coverage(0 * cord), stack) == ""  # no cord at all: the cascade says so itself


def test_median_csa_is_the_median_tilt_corrected_area() -> None:
    spacing = (0.5, 0.5, 1.0)
    assert median_csa_mm2(_tube(), spacing) == round(float(np.median(cross_sectional_areas_mm2(_tube(), spacing))), 1)
    assert median_csa_mm2(np.zeros((5, 5, 5)), spacing) is None


def test_cross_sectional_area_is_corrected_for_the_cords_tilt() -> None:
    spacing = (0.5, 0.5, 1.0)
    straight = cross_sectional_areas_mm2(_tube(), spacing)
    tilted = cross_sectional_areas_mm2(_tube(slope=1.0), spacing)  # 1 voxel (0.5 mm) per 1 mm of height: 26.6 deg
    true_area = np.pi * (4 * 0.5) ** 2
    assert np.median(straight) == pytest.approx(true_area, rel=0.1)
    # an axial cut of the tilted tube is longer by 1/cos; the correction brings it back to the true area
    raw = _tube(slope=1.0)[:, :, 15].sum() * 0.25
    assert raw > 1.05 * np.median(tilted)
    assert np.median(tilted) == pytest.approx(np.median(straight), rel=0.12)


def test_the_real_scan_exam_measures_a_real_scan(tmp_path: Path) -> None:
    image = real_path("sct-errsm30/t2s/t2s.nii.gz")
    manual = real_path("sct-errsm30/t2s/t2s_seg.nii.gz")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from real_scan_check import check_scan, markdown

    from lesionseg.inference.cascade import load_pipeline
    from lesionseg.io.registry import default_model

    (tmp_path / "montages").mkdir()
    check, cord = check_scan(load_pipeline(default_model(), device="cpu"), image, "t2s", tmp_path, manual, None,
                             contrast="T2w")
    assert check.slices_spanned == 9 and check.slices_with_cord == 9 and check.components == 1
    assert check.dice_manual is not None and check.dice_manual > 0.8
    assert 40 < check.median_csa_mm2 < 120  # an adult cervical cord
    assert (tmp_path / "montages" / "t2s.png").stat().st_size > 10_000
    assert "| t2s | 9 / 9 | 1 |" in markdown([check])
    # the same scan declared as T2w goes through the T2w stages too, reported beside the general stages' (montage too)
    assert check.declared_contrast == "T2w" and isinstance(check.lesions_declared, int)
    assert f"; as T2w: {check.lesions_declared} |" in markdown([check])
    assert check.dice_manual_declared is not None
    assert f"; as T2w: {check.dice_manual_declared:.3f} |" in markdown([check])
    assert (tmp_path / "montages" / "t2s_as-T2w.png").stat().st_size > 10_000
