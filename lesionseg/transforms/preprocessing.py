"""Preprocessing shared by training and inference, built from TorchIO transforms.

Arrays arrive in canonical RAS orientation (:mod:`lesionseg.io.nifti`); here they are resampled to the
config's spacing and intensity-normalised. :func:`resample_to_grid` takes a network output back onto the
canonical grid of the input, after which :meth:`NativeGeometry.to_native` restores the native axes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchio as tio
from torchio.transforms.preprocessing.intensity.normalization_transform import NormalizationTransform

from lesionseg.config import PreprocessConfig


def scalar_image(data: np.ndarray | torch.Tensor, affine: np.ndarray) -> tio.ScalarImage:
    """A TorchIO intensity image from a 3D array (or 4D with channels first) and its affine."""
    tensor = torch.as_tensor(np.asarray(data, dtype=np.float32))
    return tio.ScalarImage(tensor=tensor[None] if tensor.ndim == 3 else tensor, affine=affine)


def label_map(data: np.ndarray | torch.Tensor, affine: np.ndarray) -> tio.LabelMap:
    """A TorchIO label map (resampled nearest-neighbour, skipped by intensity transforms)."""
    tensor = torch.as_tensor(np.asarray(data, dtype=np.uint8))
    return tio.LabelMap(tensor=tensor[None] if tensor.ndim == 3 else tensor, affine=affine)


def _foreground(tensor: torch.Tensor) -> torch.Tensor:
    """Foreground for z-scoring: voxels above the image mean (TorchIO's usual choice for MRI)."""
    return tensor > tensor.mean()


class SignedScaling(NormalizationTransform):
    """Divide by a high percentile of the magnitude: zero stays zero and negative values stay negative (PSIR,
    whose sign separates tissues; z-scoring would shift zero)."""

    def __init__(self, percentile: float = 99.5, **kwargs) -> None:  # noqa: ANN003
        super().__init__(masking_method=None, **kwargs)
        self.percentile = percentile
        self.args_names = ["percentile"]

    def apply_normalization(self, subject: tio.Subject, image_name: str, mask: torch.Tensor) -> None:
        image = subject.get_scalar_image(image_name)
        scale = float(np.percentile(np.abs(image.data.numpy()), self.percentile))
        image.set_data(image.data.float() / (scale if scale > 0 else 1.0))


def normalization_method(config: PreprocessConfig, contrast: str | None) -> str:
    """The normalisation of images of ``contrast`` (``contrast_normalization``, else ``normalization``)."""
    return config.contrast_normalization.get(contrast, config.normalization) if contrast else config.normalization


class ContrastNormalization(tio.Transform):
    """Intensity normalisation chosen per image by its contrast: the subject's ``contrast`` entry (set when
    training data is loaded), else ``contrast`` given here (inference), else ``config.normalization``."""

    def __init__(self, config: PreprocessConfig, contrast: str | None = None, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.config = config
        self.contrast = contrast
        self.args_names = ["config", "contrast"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        contrast = subject.get("contrast") or self.contrast
        method = normalization_method(self.config, contrast)
        if method == "percentile":
            transform: tio.Transform = tio.RescaleIntensity(out_min_max=(0.0, 1.0), percentiles=self.config.percentiles)
        elif method == "signed":
            transform = SignedScaling(self.config.percentiles[1])
        else:
            transform = tio.ZNormalization(masking_method=_foreground)
        return transform(subject)


#: Statistics of larger images are taken from a strided view (the normalisation of 512 x 512 x 256 would
#: otherwise sort 67 million voxels for each percentile).
MAX_STATISTICS_VOXELS = 2**23


def fixed_normalization(config: PreprocessConfig, contrast: str | None, sample: np.ndarray) -> tio.Transform:
    """The normalisation of ``contrast`` with its statistics taken once from ``sample`` (e.g. a strided view of a
    whole image), so that parts of the image (slabs, the cascade's crop) are normalised alike. A pure affine map
    (plus the clipping of percentile normalisation). Samples above ``MAX_STATISTICS_VOXELS`` are strided."""
    stride = max(1, math.ceil((np.size(sample) / MAX_STATISTICS_VOXELS) ** (1 / 3)))
    # statistics in float64: no finite input overflows a sum or a square
    sample = np.asarray(sample[::stride, ::stride, ::stride], dtype=np.float64)
    method = normalization_method(config, contrast)
    if method == "percentile":
        low, high = (float(v) for v in np.percentile(sample, config.percentiles))
        return tio.Compose([tio.Clamp(out_min=low, out_max=high),
                            tio.RescaleIntensity(out_min_max=(0.0, 1.0), in_min_max=(low, high))])
    if method == "signed":
        scale = float(np.percentile(np.abs(sample), config.percentiles[1])) or 1.0
        return tio.RescaleIntensity(out_min_max=(-1.0, 1.0), in_min_max=(-scale, scale))
    foreground = sample[sample > sample.mean()]
    mean, std = float(foreground.mean()), float(foreground.std()) or 1.0
    return tio.RescaleIntensity(out_min_max=(-1.0, 1.0), in_min_max=(mean - std, mean + std))


def normalization(config: PreprocessConfig, contrast: str | None = None) -> tio.Transform:
    """The intensity normalisation of ``config`` as a TorchIO transform (per contrast, see
    :class:`ContrastNormalization`)."""
    return ContrastNormalization(config, contrast)


def resampling(config: PreprocessConfig) -> tio.Compose:
    """Resampling to ``config.spacing_mm`` (an empty pipeline when it is None)."""
    return tio.Compose([tio.Resample(tuple(config.spacing_mm))] if config.spacing_mm is not None else [])


def preprocessing(config: PreprocessConfig, contrast: str | None = None) -> tio.Compose:
    """Resampling to ``config.spacing_mm`` (when set) then intensity normalisation (of ``contrast`` when the
    images carry none).

    Label maps are resampled nearest-neighbour and are left out of normalisation (TorchIO's types). A cascaded
    lesion model is trained on crops of images normalised whole; inference normalises its crop with the whole
    image's statistics (:func:`fixed_normalization`).
    """
    return tio.Compose([*resampling(config).transforms, normalization(config, contrast)])


def resample_to_spacing(image: tio.Image, spacing_mm: tuple[float, float, float]) -> tio.Image:
    """Resample to a voxel size (linear for intensities, nearest for label maps)."""
    return tio.Resample(tuple(spacing_mm))(image)


def resample_to_grid(image: tio.Image, shape: tuple[int, int, int], affine: np.ndarray) -> tio.Image:
    """Resample onto the grid ``(shape, affine)`` (linear for intensities, nearest for label maps)."""
    return tio.Resample((tuple(int(s) for s in shape), np.asarray(affine)))(image)
