"""The lesion table: volumes, scanner coordinates, extent along the cord, levels, minimum size."""

from __future__ import annotations

import numpy as np
import pytest

from lesionseg.inference.lesions import cord_axis, lesion_table, remove_small_lesions
from lesionseg.io.nifti import load_image, load_label_for
from tests.conftest import real_path


def test_volume_centroid_and_extent_on_an_anisotropic_grid() -> None:
    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    affine[:3, 3] = [-10.0, 20.0, 5.0]
    mask = np.zeros((20, 20, 10), dtype=np.uint8)
    mask[4:8, 6:10, 2:5] = 1  # 4 x 4 x 3 voxels = 2 x 2 x 9 mm
    probabilities = mask * 0.8
    probabilities[5, 7, 3] = 0.97
    table = lesion_table(mask, affine, probabilities=probabilities)
    assert table.count == 1
    row = table.lesions[0]
    assert row.volume_mm3 == pytest.approx(48 * 0.75)
    assert row.centroid_ras_mm == pytest.approx((-10 + 5.5 * 0.5, 20 + 7.5 * 0.5, 5 + 3 * 3.0))
    assert row.centroid_lps_mm == pytest.approx((10 - 2.75, -20 - 3.75, 14.0))
    assert row.extent_along_cord_mm == pytest.approx(9.0)  # no cord: along the superior axis
    assert row.max_probability == pytest.approx(0.97)
    assert row.vertebral_level == "" and row.nearest_disc == ""
    assert table.total_volume_mm3 == pytest.approx(36.0)


def test_extent_follows_a_tilted_cord() -> None:
    cord = np.zeros((60, 60, 60), dtype=np.uint8)
    lesion = np.zeros_like(cord)
    for t in range(60):  # a cord along the x = z diagonal
        cord[t, 28:32, max(0, t - 2) : t + 2] = 1
    for t in range(20, 30):
        lesion[t, 29:31, t] = 1  # 10 voxels along the diagonal: about 10 * sqrt(2) mm
    axis = cord_axis(cord, np.eye(4))
    assert axis == pytest.approx(np.array([1, 0, 1]) / np.sqrt(2), abs=0.05)
    row = lesion_table(lesion, np.eye(4), cord=cord).lesions[0]
    assert row.extent_along_cord_mm == pytest.approx(9 * np.sqrt(2) + 1 / np.sqrt(2), abs=0.6)


def test_minimum_size_and_connectivity() -> None:
    mask = np.zeros((10, 10, 10), dtype=np.uint8)
    mask[1, 1, 1] = 1  # 1 mm3
    mask[5:8, 5:8, 5:8] = 1  # 27 mm3
    assert lesion_table(mask, np.eye(4)).count == 2
    assert lesion_table(mask, np.eye(4), min_volume_mm3=1.0).count == 1
    assert remove_small_lesions(mask, (1, 1, 1), 1.0).sum() == 27


def test_vertebral_level_from_the_pam50_level_map() -> None:
    template = load_image(real_path("pam50-small/PAM50_small_t2.nii.gz"))
    cord = load_label_for(template, real_path("pam50-small/PAM50_small_cord.nii.gz")).data
    levels = np.rint(load_image(real_path("pam50-small/PAM50_small_levels.nii.gz")).data).astype(int)
    level_voxels = np.argwhere((levels == 4) & (cord > 0))
    lesion = np.zeros_like(cord)
    centre = level_voxels[len(level_voxels) // 2]
    lesion[tuple(centre)] = 1
    lesion[centre[0], centre[1], centre[2] + 1] = 1
    table = lesion_table(lesion, template.affine, cord=cord, levels=levels)
    assert table.lesions[0].vertebral_level == "C4"


def test_rows_run_head_to_foot_with_levels_discs_and_a_labelled_mask() -> None:
    mask = np.zeros((12, 12, 40), dtype=np.uint8)
    mask[4:7, 4:7, 3:6] = 1  # low: L1 (slices 0..9 are level 20)
    mask[4:6, 4:6, 32:34] = 1  # high: C7 (slices 30..39 are level 7)
    mask[7:9, 7:9, 18:23] = 1  # T1 / T2 boundary at 19.5: 2 slices in T2 (level 9), 3 in T1 (level 8)
    levels = np.zeros_like(mask, dtype=np.int32)
    for first, value in ((0, 20), (10, 9), (20, 8), (30, 7)):
        levels[3:9, 3:9, first:first + 10] = value
    table = lesion_table(mask, np.eye(4), levels=levels)
    assert [row.vertebral_level for row in table.lesions] == ["C7", "T1", "L1"]
    assert [row.volume_mm3 for row in table.lesions] == [8.0, 20.0, 27.0]
    assert [np.count_nonzero(table.labels == i) for i in (1, 2, 3)] == [8, 20, 27]
    assert table.lesions[0].nearest_disc == "C7-T1" and table.lesions[0].distance_to_disc_mm == pytest.approx(3.0)
    assert table.lesions[1].nearest_disc == "T1-T2" and table.lesions[1].distance_to_disc_mm == pytest.approx(0.5)
    per_level = {row.vertebral_level: (row.lesions, row.volume_mm3) for row in table.per_level}
    assert per_level == {"C7": (1, 8.0), "T1": (1, 12.0), "T2": (0, 8.0), "L1": (1, 27.0)}
    assert table.level_source == "level map"
    assert [row.level_shares for row in table.lesions] == ["C7 100%", "T1 60%, T2 40%", "L1 100%"]
    levels[:, :, :5] = 0  # the low lesion half outside the levels' extent: its shares add up to less than 100%
    assert lesion_table(mask, np.eye(4), levels=levels).lesions[2].level_shares == "L1 33%"


def test_the_csv_columns_are_every_field_of_a_row_once() -> None:
    from dataclasses import fields

    from lesionseg.inference.lesions import ROW_FIELDS, LesionRow

    assert sorted(ROW_FIELDS) == sorted(field.name for field in fields(LesionRow))


def test_automatic_levels_name_the_lesions_and_a_users_level_map_wins(tmp_path) -> None:
    from dataclasses import replace

    import nibabel as nib

    from lesionseg.inference.batch import AUTOMATIC_LEVELS, BatchOptions, _Batch
    from lesionseg.inference.predictor import Prediction
    from lesionseg.inference.segmenter import Segmentation
    from lesionseg.io.inputs import InputFile

    shape = (20, 20, 40)
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random(shape, np.float32), np.eye(4)), tmp_path / "scan.nii.gz")
    image = load_image(tmp_path / "scan.nii.gz")
    cord, lesion = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    cord[8:12, 8:12, :] = 1
    lesion[9:11, 9:11, 30:33] = 1
    automatic = np.where(cord > 0, np.where(np.arange(40) >= 20, 2, 3)[None, None, :], 0)  # C2 above slice 20
    segmentation = Segmentation(lesion=Prediction(lesion.astype(np.float32), lesion, image.affine, image.geometry),
                                cord=Prediction(cord.astype(np.float32), cord, image.affine, image.geometry),
                                levels=automatic)
    batch = _Batch(None, tmp_path / "out", BatchOptions(levels_suffix="levels"), [])  # type: ignore[arg-type]
    item = InputFile(tmp_path / "scan.nii.gz", tmp_path)
    table = batch.lesion_table(item, image, segmentation)
    assert table.level_source == AUTOMATIC_LEVELS and table.lesions[0].vertebral_level == "C2"
    nib.save(nib.Nifti1Image(np.where(cord > 0, 5, 0).astype(np.int16), np.eye(4)), tmp_path / "scan_levels.nii.gz")
    table = batch.lesion_table(item, image, segmentation)
    assert table.level_source == "level map" and table.lesions[0].vertebral_level == "C5"
    assert batch.lesion_table(item, image, replace(segmentation, levels=None)).level_source == "level map"


def test_point_labels_beside_a_scan_are_read_in_the_kind_given_and_refused_as_a_level_map(tmp_path) -> None:
    import nibabel as nib

    from lesionseg.errors import ConfigError, InputError
    from lesionseg.analysis.levels import LEVEL_FILE_KINDS
    from lesionseg.inference.batch import BatchOptions, _Batch
    from lesionseg.inference.predictor import Prediction
    from lesionseg.inference.segmenter import Segmentation
    from lesionseg.io.inputs import InputFile

    shape = (20, 20, 40)
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random(shape, np.float32), np.eye(4)), tmp_path / "scan.nii.gz")
    image = load_image(tmp_path / "scan.nii.gz")
    lesion = np.zeros(shape, np.uint8)
    lesion[9:11, 9:11, 22:25] = 1
    segmentation = Segmentation(lesion=Prediction(lesion.astype(np.float32), lesion, image.affine, image.geometry))
    discs = np.zeros(shape, np.int16)
    discs[10, 10, 35], discs[10, 10, 20] = 6, 7  # C5-C6 and C6-C7: the lesion (slices 22-24) is in C6
    nib.save(nib.Nifti1Image(discs, np.eye(4)), tmp_path / "scan_labels-disc.nii.gz")
    item = InputFile(tmp_path / "scan.nii.gz", tmp_path)

    def table(kind: str):
        options = BatchOptions(levels_suffix="labels-disc", levels_kind=kind)
        batch = _Batch(None, tmp_path / "out", options, [])  # type: ignore[arg-type]
        return batch.lesion_table(item, image, segmentation)

    with pytest.raises(InputError, match="scan_labels-disc.nii.gz: point labels .* --levels-kind discs or vertebrae"):
        table("map")
    by_discs = table("discs")
    assert by_discs.lesions[0].vertebral_level == "C6" and by_discs.level_source == LEVEL_FILE_KINDS["discs"]
    assert by_discs.lesions[0].nearest_disc == "C6-C7"
    assert table("vertebrae").lesions[0].vertebral_level == "C7"  # as mid-heights: C6-C7 at slice 27.5
    with pytest.raises(ConfigError, match="levels_kind 'bodies'"):
        BatchOptions(levels_kind="bodies")
