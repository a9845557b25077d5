"""Intensity normalisation as an affine map fitted on an image, in NumPy (no torch needed at inference).

Training applies it inside TorchIO pipelines (:class:`lesionseg.transforms.preprocessing.ContrastNormalization`)
and inference applies it directly, so both normalise alike::

    normalization = fit_normalization(config.preprocess, "T2w", image)   # statistics of the whole image
    normalized = normalization(crop)                                      # any part of it, mapped alike

- ``zscore``: voxels above the image mean are the foreground; ``(x - mean) / std`` of the foreground (the
  standard deviation with Bessel's correction, as ``torch.std``);
- ``percentile``: clipped to the ``percentiles`` of the image, then mapped to [0, 1];
- ``signed``: divided by the high percentile of the magnitude, so zero stays zero (PSIR).

:func:`equalize_slices` (CLAHE per axial slice) is an optional step before a cascade's cord model
(``cascade.cord_clahe_clip_limit``), at inference only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from skimage.exposure import equalize_adapthist

from lesionseg.config import PreprocessConfig

#: Statistics of larger images are taken from a strided view (the normalisation of 512 x 512 x 256 would
#: otherwise sort 67 million voxels for each percentile).
MAX_STATISTICS_VOXELS = 2**23


def normalization_method(config: PreprocessConfig, contrast: str | None) -> str:
    """The normalisation of images of ``contrast`` (``contrast_normalization``, else ``normalization``)."""
    return config.contrast_normalization.get(contrast, config.normalization) if contrast else config.normalization


@dataclass(frozen=True)
class Normalization:
    """``(clip(x, *clip) - offset) / scale`` in float32."""

    offset: float
    scale: float
    clip: tuple[float, float] | None = None

    def __call__(self, data: np.ndarray) -> np.ndarray:
        array = np.asarray(data, dtype=np.float32)
        if self.clip is not None:
            array = np.clip(array, *self.clip)
        return ((array - np.float32(self.offset)) / np.float32(self.scale)).astype(np.float32, copy=False)


def _statistics_sample(data: np.ndarray) -> np.ndarray:
    """``data`` in float64 (no finite input overflows a sum or a square), strided above MAX_STATISTICS_VOXELS."""
    stride = max(1, math.ceil((np.size(data) / MAX_STATISTICS_VOXELS) ** (1 / 3)))
    sample = np.asarray(data)
    if stride > 1:
        sample = sample[..., ::stride, ::stride, ::stride]
    return np.asarray(sample, dtype=np.float64)


def _percentile_map(sample: np.ndarray, percentiles: tuple[float, float]) -> Normalization:
    """Clip to the ``percentiles`` of ``sample`` and map them to [0, 1]."""
    low, high = (float(v) for v in np.percentile(sample, percentiles))
    return Normalization(offset=low, scale=(high - low) or 1.0, clip=(low, high))


def fit_normalization(config: PreprocessConfig, contrast: str | None, data: np.ndarray) -> Normalization:
    """The normalisation of ``contrast`` with its statistics taken from ``data`` (the whole image)."""
    sample = _statistics_sample(data)
    method = normalization_method(config, contrast)
    if method == "percentile":
        return _percentile_map(sample, config.percentiles)
    if method == "signed":
        return Normalization(offset=0.0, scale=float(np.percentile(np.abs(sample), config.percentiles[1])) or 1.0)
    foreground = sample[sample > sample.mean()]
    if foreground.size < 2:  # a constant image: nothing above its mean
        return Normalization(offset=float(sample.mean()), scale=1.0)
    return Normalization(offset=float(foreground.mean()), scale=float(foreground.std(ddof=1)) or 1.0)


def equalize_slices(data: np.ndarray, clip_limit: float, percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """Each axial slice (canonical ``Z``) of ``data`` equalised on its own by contrast-limited adaptive histogram
    equalisation (scikit-image's ``equalize_adapthist`` with its default regions, 1/8 of the slice per axis, and
    ``clip_limit``), after clipping the whole array to its ``percentiles`` and mapping them to [0, 1]; float32 in
    [0, 1]. It raises the local contrast of a slice (a cord nearly as bright as its CSF) and evens out the coil
    shading between slices."""
    scaled = _percentile_map(_statistics_sample(data), percentiles)(data)
    slices = [equalize_adapthist(scaled[:, :, z], clip_limit=clip_limit) for z in range(scaled.shape[2])]
    return np.stack(slices, axis=2).astype(np.float32)
