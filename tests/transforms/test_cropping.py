"""Crop boxes in mm, the jittered TorchIO crop, and mask postprocessing."""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio

from lesionseg.transforms.augmentation import RandomCropAroundLabel
from lesionseg.transforms.cropping import bounding_box, crop_affine, crop_box_around, expand_box
from lesionseg.transforms.postprocessing import dilate_mm, keep_largest_component


def test_box_grows_by_margin_in_mm_and_is_clipped() -> None:
    mask = np.zeros((20, 30, 40), dtype=np.uint8)
    mask[8:12, 10:20, 5:35] = 1
    assert bounding_box(mask) == ((8, 12), (10, 20), (5, 35))
    assert bounding_box(np.zeros((3, 3, 3))) is None
    box = crop_box_around(mask, (0.5, 1.0, 2.0), (2.0, 2.0, 10.0))
    assert box == ((4, 16), (8, 22), (0, 40))  # 4 voxels of 0.5 mm, 2 of 1 mm, clipped at the ends
    assert expand_box(((8, 12), (10, 20), (5, 35)), (20, 30, 40), (1.0, 1.0, 1.0), ((0.0, 3.0), (1.0, 0.0), (0.0, 0.0))) == ((8, 15), (9, 20), (5, 35))


def test_crop_affine_keeps_world_positions() -> None:
    affine = np.array([[0.0, 0.0, 2.0, 10.0], [-0.5, 0.0, 0.0, 5.0], [0.0, 0.7, 0.0, -3.0], [0, 0, 0, 1]])
    box = ((3, 9), (2, 8), (4, 6))
    shifted = crop_affine(affine, box)
    voxel_in_crop = np.array([1, 2, 1, 1.0])
    same_voxel = np.array([4, 4, 5, 1.0])
    np.testing.assert_allclose(shifted @ voxel_in_crop, affine @ same_voxel)


def test_random_crop_always_contains_the_label_and_varies() -> None:
    torch.manual_seed(0)
    subject = tio.Subject(
        image=tio.ScalarImage(tensor=torch.rand(1, 40, 50, 60)),
        label=tio.LabelMap(tensor=torch.zeros(1, 40, 50, 60, dtype=torch.uint8)),
        cord=tio.LabelMap(tensor=torch.zeros(1, 40, 50, 60, dtype=torch.uint8)),
    )
    subject["cord"].data[0, 15:25, 20:30, 10:50] = 1
    subject["label"].data[0, 18:20, 22:24, 30:34] = 1
    transform = RandomCropAroundLabel("cord", (5.0, 5.0, 5.0), jitter_mm=3.0)
    shapes = set()
    for _ in range(10):
        cropped = transform(subject)
        assert int(cropped["cord"].data.sum()) == int(subject["cord"].data.sum())
        assert int(cropped["label"].data.sum()) == int(subject["label"].data.sum())
        assert cropped["image"].shape == cropped["cord"].shape
        shapes.add(cropped.spatial_shape)
    assert len(shapes) > 3
    assert all(s[0] <= 10 + 2 * 8 for s in shapes)


def test_empty_label_leaves_the_subject_uncropped() -> None:
    subject = tio.Subject(image=tio.ScalarImage(tensor=torch.rand(1, 8, 8, 8)), cord=tio.LabelMap(tensor=torch.zeros(1, 8, 8, 8, dtype=torch.uint8)))
    assert RandomCropAroundLabel("cord", (2.0, 2.0, 2.0))(subject).spatial_shape == (8, 8, 8)


def test_keep_largest_component() -> None:
    mask = np.zeros((10, 10, 10), dtype=np.uint8)
    mask[0:2, 0:2, 0:2] = 1
    mask[5:9, 5:9, 5:9] = 1
    largest = keep_largest_component(mask)
    assert largest.sum() == 64 and largest[0, 0, 0] == 0
    assert keep_largest_component(np.zeros((3, 3, 3))).sum() == 0


def test_dilate_mm_respects_anisotropic_spacing() -> None:
    mask = np.zeros((21, 21, 21), dtype=np.uint8)
    mask[10, 10, 10] = 1
    grown = dilate_mm(mask, (1.0, 1.0, 3.0), 3.0)
    assert grown[13, 10, 10] == 1 and grown[14, 10, 10] == 0  # 3 voxels of 1 mm
    assert grown[10, 10, 11] == 1 and grown[10, 10, 12] == 0  # 1 voxel of 3 mm
    assert dilate_mm(mask, (1.0, 1.0, 1.0), 0.0).sum() == 1
