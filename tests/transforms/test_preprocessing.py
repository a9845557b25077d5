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
from lesionseg.transforms.normalization import equalize_slices, fit_normalization
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


def _faint_cord(shape=(64, 64, 24)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """A cord (1.0) in a CSF ring (1.1) in muscle (0.8), beside bright fat (4.0), with noise."""
    x, y, _ = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    radius = np.hypot(x - 32, y - 32)
    cord, ring = radius <= 5, (radius > 5) & (radius <= 8)
    data = np.where(cord, 1.0, np.where(ring, 1.1, 0.8))
    data[:, :12] = 4.0
    return (data + np.random.default_rng(0).normal(0.0, 0.02, shape)).astype(np.float32), cord, ring


def test_equalising_each_slice_raises_the_cords_contrast_and_evens_coil_shading() -> None:
    data, cord, ring = _faint_cord()

    def contrast(array: np.ndarray) -> float:  # CSF minus cord, as a share of the image's range
        return float((array[ring].mean() - array[cord].mean()) / (array.max() - array.min()))

    equalized = equalize_slices(data, 0.01)
    assert equalized.dtype == np.float32 and equalized.shape == data.shape
    assert 0.0 <= equalized.min() and equalized.max() <= 1.0
    assert contrast(equalized) > 2 * contrast(data)  # 0.083 vs 0.029
    assert contrast(equalize_slices(data, 0.05)) > 2 * contrast(equalized)  # 0.203: the clip limit bounds the gain
    shaded = data.copy()
    shaded[:, :, :6] *= 0.4  # the lowest slices darkened, as far from a coil
    evened = equalize_slices(shaded, 0.01)
    low, high = np.percentile(shaded, (0.5, 99.5))
    scaled = np.clip((shaded - low) / (high - low), 0, 1)
    assert np.abs(scaled[:, :, 3] - scaled[:, :, 12]).mean() > 0.2  # the same anatomy, 0.23 apart
    assert np.abs(evened[:, :, 3] - evened[:, :, 12]).mean() < 0.05  # 0.027 once each slice is equalised
