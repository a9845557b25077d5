"""Resampling with TorchIO: to a spacing and back onto the input grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lesionseg.config import PreprocessConfig
from lesionseg.io.nifti import load_image, load_label_for
from lesionseg.transforms.preprocessing import label_map, preprocessing, resample_to_grid, resample_to_spacing, scalar_image
from tests.conftest import real_path


def test_anisotropic_scan_to_isotropic_and_back() -> None:
    scan = load_image(real_path("sct-errsm30/t2s/t2s.nii.gz"))  # 0.5 x 0.5 x 7.5 mm
    cord = load_label_for(scan, real_path("sct-errsm30/t2s/t2s_seg.nii.gz"))
    iso = resample_to_spacing(label_map(cord.data, cord.affine), (1.0, 1.0, 1.0))
    assert iso.spacing == pytest.approx((1.0, 1.0, 1.0))
    back = resample_to_grid(iso, scan.data.shape, scan.affine)
    assert back.shape[1:] == scan.data.shape
    np.testing.assert_allclose(back.affine, scan.affine, atol=1e-6)
    restored = back.data[0].numpy()
    assert set(np.unique(restored)) <= {0, 1}
    dice = 2 * (restored * cord.data).sum() / (restored.sum() + cord.data.sum())
    assert dice > 0.85


def test_preprocessing_normalises_and_resamples() -> None:
    scan = load_image(real_path("sct-errsm30/t1/t1w.nii.gz"))
    image = scalar_image(scan.data, scan.affine)
    resampled = preprocessing(PreprocessConfig(spacing_mm=(2.0, 2.0, 2.0)))(image)
    assert resampled.spacing == pytest.approx((2.0, 2.0, 2.0))

    zscored = preprocessing(PreprocessConfig(spacing_mm=None))(image).data
    foreground = image.data > image.data.mean()
    assert float(zscored[foreground].mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(zscored[foreground].std()) == pytest.approx(1.0, abs=1e-2)

    percentile = preprocessing(PreprocessConfig(spacing_mm=None, normalization="percentile"))(image)
    assert float(percentile.data.min()) == pytest.approx(0.0) and float(percentile.data.max()) == pytest.approx(1.0)


def test_labels_skip_intensity_normalisation() -> None:
    data = np.zeros((8, 8, 8), dtype=np.uint8)
    data[2:5, 2:5, 2:5] = 1
    label = label_map(data, np.eye(4))
    out = preprocessing(PreprocessConfig(spacing_mm=None))(label)
    assert torch.equal(out.data, label.data)
