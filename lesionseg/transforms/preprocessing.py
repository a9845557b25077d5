"""Preprocessing shared by training and inference, built from TorchIO transforms.

Arrays arrive in canonical RAS orientation (:mod:`lesionseg.io.nifti`); here training images are resampled to
the config's spacing and intensity-normalised inside TorchIO pipelines. Inference does the same in NumPy and
SimpleITK (:mod:`lesionseg.transforms.resampling`, :mod:`lesionseg.transforms.normalization`), and a test checks
that both give the same arrays.
"""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio

from lesionseg.config import PreprocessConfig
from lesionseg.transforms.normalization import fit_normalization


def scalar_image(data: np.ndarray | torch.Tensor, affine: np.ndarray) -> tio.ScalarImage:
    """A TorchIO intensity image from a 3D array (or 4D with channels first) and its affine."""
    tensor = torch.as_tensor(np.asarray(data, dtype=np.float32))
    return tio.ScalarImage(tensor=tensor[None] if tensor.ndim == 3 else tensor, affine=affine)


def label_map(data: np.ndarray | torch.Tensor, affine: np.ndarray) -> tio.LabelMap:
    """A TorchIO label map (resampled nearest-neighbour, skipped by intensity transforms)."""
    tensor = torch.as_tensor(np.asarray(data, dtype=np.uint8))
    return tio.LabelMap(tensor=tensor[None] if tensor.ndim == 3 else tensor, affine=affine)


class ContrastNormalization(tio.Transform):
    """Intensity normalisation chosen per image by its contrast: the subject's ``contrast`` entry (set when
    training data is loaded), else ``contrast`` given here (inference), else ``config.normalization``; the map
    itself is inference's (:func:`lesionseg.transforms.normalization.fit_normalization`)."""

    def __init__(self, config: PreprocessConfig, contrast: str | None = None, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.config = config
        self.contrast = contrast
        self.args_names = ["config", "contrast"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        contrast = subject.get("contrast") or self.contrast
        for image in subject.get_images(intensity_only=True):
            array = image.data.numpy()
            normalized = fit_normalization(self.config, contrast, array)(array)
            image.set_data(torch.from_numpy(normalized))
        return subject


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
    image's statistics.
    """
    return tio.Compose([*resampling(config).transforms, normalization(config, contrast)])
