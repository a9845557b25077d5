"""Vertebral levels from Spinal Cord Toolbox's point labels (discs, vertebral mid-heights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lesionseg.analysis.levels import levels_from_points, looks_like_points, slice_levels

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "sct-errsm30" / "t2"


def _points(depth: int, labels: dict[int, int]) -> np.ndarray:
    """Single-voxel labels ``{value: slice}`` on a 4 x 4 x ``depth`` grid."""
    volume = np.zeros((4, 4, depth), dtype=np.int32)
    for value, z in labels.items():
        volume[2, 2, z] = value
    return volume


def _per_slice(levels: np.ndarray) -> list[int]:
    assert (levels == levels[:1, :1, :]).all()  # one level per axial slice
    return levels[0, 0].tolist()


def test_disc_labels_bound_the_vertebrae_below_them_and_fill_a_missing_disc() -> None:
    # C2-C3 (3) at slice 40, C4-C5 (5) at 10: C3-C4 half-way (25), 15 slices a vertebra
    levels = _per_slice(levels_from_points(_points(60, {3: 40, 5: 10}), "discs"))
    assert levels[56:] == [0] * 4  # past one vertebra above the top disc
    assert set(levels[41:56]) == {2} and set(levels[26:41]) == {3} and set(levels[11:26]) == {4}
    assert set(levels[:11]) == {5}  # one vertebra below the lowest disc, cut by the field of view
    assert [disc.name for disc in slice_levels(levels_from_points(_points(60, {3: 40, 5: 10}), "discs")).discs] == [
        "C4-C5", "C3-C4", "C2-C3"]


def test_vertebra_labels_put_the_discs_half_way_between_mid_heights() -> None:
    levels = _per_slice(levels_from_points(_points(60, {3: 40, 5: 10}), "vertebrae"))
    assert set(levels[48:]) == {0} and set(levels[:3]) == {0}  # half a vertebra past the outer labels
    assert set(levels[33:48]) == {3} and set(levels[18:33]) == {4} and set(levels[3:18]) == {5}


def test_point_labels_that_give_no_levels_are_refused_and_pontomedullary_labels_ignored() -> None:
    with pytest.raises(ValueError, match="at least two"):
        levels_from_points(_points(30, {3: 20, 50: 28}), "discs")
    with pytest.raises(ValueError, match="head to foot"):
        levels_from_points(_points(30, {3: 5, 4: 20}), "vertebrae")
    with pytest.raises(ValueError, match="unknown kind"):
        levels_from_points(_points(30, {3: 20, 4: 5}), "bodies")
    assert set(_per_slice(levels_from_points(_points(40, {3: 30, 4: 15, 49: 38}), "vertebrae"))[8:37]) == {3, 4}


def test_point_labels_are_told_from_a_level_map() -> None:
    assert looks_like_points(_points(30, {3: 20, 4: 5}))
    level_map = np.zeros((8, 8, 30), dtype=np.int32)
    level_map[3:6, 3:6, 10:20] = 4
    assert not looks_like_points(level_map)
    assert not looks_like_points(np.zeros((4, 4, 4), dtype=np.int32))


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is absent")
def test_the_errsm30_vertebra_labels_give_the_labelled_cords_level_boundaries() -> None:
    """SCT's errsm30 T2w: labels.nii.gz (C3 and C5 mid-heights) and the labelled cord put the level boundaries on
    the same slices, but name them one level apart (the point labels' C3 is the labelled cord's C2)."""
    from lesionseg.io.nifti import load_image

    points = np.rint(load_image(REAL / "labels.nii.gz").data).astype(np.int32)
    reference = np.rint(load_image(REAL / "t2_seg-manual_labeled.nii.gz").data).astype(np.int32)
    levels = levels_from_points(points, "vertebrae")
    cord = reference > 0
    assert (levels[cord] > 0).all()
    assert np.mean(levels[cord] == reference[cord] + 1) > 0.9
