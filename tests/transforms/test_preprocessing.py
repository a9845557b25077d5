"""Preprocessing: inference's NumPy/SimpleITK resampling and normalisation give TorchIO's arrays (training's),
to a spacing and back onto the input grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchio as tio
from scipy.spatial.transform import Rotation

from lesionseg.config import PreprocessConfig
from lesionseg.io.nifti import load_image, load_label_for
from lesionseg.transforms.normalization import fit_normalization
from lesionseg.transforms.preprocessing import label_map, preprocessing, scalar_image
from lesionseg.transforms.resampling import pad_edge, resample, resample_to_spacing, spacing_of, working_grid
from tests.conftest import real_path


def _oblique_image() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(37, 41, 13)) * 100 + 300).astype(np.float32)
    affine = np.diag([0.7, 0.8, 3.0, 1.0])
    affine[:3, :3] = Rotation.from_euler("xyz", [10, -20, 5], degrees=True).as_matrix() @ affine[:3, :3]
    affine[:3, 3] = [-10, 5, 20]
    return data, affine


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 0.5, 0.5), (2.0, 0.3, 4.0)])
def test_resampling_gives_torchio_arrays(spacing: tuple[float, float, float]) -> None:
    data, affine = _oblique_image()
    reference = tio.Resample(spacing)(scalar_image(data, affine))
    ours, our_affine = resample_to_spacing(data, affine, spacing)
    np.testing.assert_allclose(our_affine, reference.affine, atol=1e-9)
    np.testing.assert_allclose(ours, reference.data[0].numpy(), atol=1e-4)
    back_reference = tio.Resample((data.shape, affine))(tio.Pad(1, padding_mode="edge")(reference))
    back = resample(*pad_edge(ours, our_affine), data.shape, affine)
    np.testing.assert_allclose(back, back_reference.data[0].numpy(), atol=1e-4)


@pytest.mark.parametrize("method", ["zscore", "percentile", "signed"])
def test_normalisation_gives_torchio_arrays(method: str) -> None:
    data, affine = _oblique_image()
    data -= 250  # negative values too (signed)
    config = PreprocessConfig(normalization=method, contrast_normalization={})
    image = scalar_image(data, affine)
    reference = {
        "zscore": tio.ZNormalization(masking_method=lambda tensor: tensor > tensor.mean()),
        "percentile": tio.RescaleIntensity(out_min_max=(0.0, 1.0), percentiles=config.percentiles),
        "signed": tio.Lambda(lambda t: t / float(np.percentile(np.abs(data), config.percentiles[1]))),
    }[method](image).data[0].numpy()
    np.testing.assert_allclose(fit_normalization(config, None, data)(data), reference, atol=1e-5)


def test_anisotropic_scan_to_isotropic_and_back() -> None:
    scan = load_image(real_path("sct-errsm30/t2s/t2s.nii.gz"))  # 0.5 x 0.5 x 7.5 mm
    cord = load_label_for(scan, real_path("sct-errsm30/t2s/t2s_seg.nii.gz"))
    shape, affine = working_grid(scan.data.shape, scan.affine, (1.0, 1.0, 1.0))
    iso = resample(cord.data, cord.affine, shape, affine, interpolation="nearest")
    assert spacing_of(affine) == pytest.approx((1.0, 1.0, 1.0))
    restored = resample(iso, affine, scan.data.shape, scan.affine, interpolation="nearest")
    assert restored.shape == scan.data.shape
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
