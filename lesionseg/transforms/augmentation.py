"""Training augmentation from :class:`~lesionseg.config.AugmentConfig`, with TorchIO.

Spatial transforms move image and label together (labels nearest-neighbour); intensity transforms touch only
the image (TorchIO skips ``LabelMap``). Arrays are RAS, so axis 0 is left-right.
"""

from __future__ import annotations

import torch
import torchio as tio
from torchio.transforms.augmentation.random_transform import RandomTransform
from torchio.transforms.spatial_transform import SpatialTransform

from lesionseg.config import AugmentConfig
from lesionseg.transforms.cropping import bounding_box, expand_box


class RandomInversion(tio.IntensityTransform):
    """Negate the (normalised) image: bright lesions become dark ones. Trains features that do not depend on the
    polarity of a contrast (T2w lesions are bright, T1w and PSIR lesions dark), so a model transfers better."""

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        for image in self.get_images(subject):
            image.set_data(-image.data)
        return subject


def augmentation(config: AugmentConfig) -> tio.Compose | None:
    """The augmentation pipeline, or None when disabled.

    Spatial first (affine, elastic, left-right flip), then intensity (bias field, gamma, blur, thick-slice
    anisotropy, noise), each with the probability the config gives.
    """
    if not config.enabled:
        return None
    candidates: list[tuple[float, tio.Transform]] = [
        (config.p_affine, tio.RandomAffine(scales=(0.85, 1.15), degrees=10, translation=3, p=config.p_affine)),
        (
            config.p_elastic,
            tio.RandomElasticDeformation(num_control_points=6, max_displacement=4, p=config.p_elastic),
        ),
        (config.p_flip_lr, tio.RandomFlip(axes=(0,), flip_probability=config.p_flip_lr)),
        (config.p_bias_field, tio.RandomBiasField(coefficients=0.3, p=config.p_bias_field)),
        (config.p_gamma, tio.RandomGamma(log_gamma=(-0.3, 0.3), p=config.p_gamma)),
        (config.p_blur, tio.RandomBlur(std=(0.0, 1.0), p=config.p_blur)),
        (config.p_anisotropy, tio.RandomAnisotropy(axes=(0, 1, 2), downsampling=(1.5, 3.0), p=config.p_anisotropy)),
        (config.p_noise, tio.RandomNoise(std=(0.0, 0.1), p=config.p_noise)),
        (config.p_invert, RandomInversion(p=config.p_invert)),
    ]
    transforms = [transform for probability, transform in candidates if probability > 0]
    return tio.Compose(transforms) if transforms else None


class RandomCropAroundLabel(RandomTransform, SpatialTransform):
    """Crop a subject to the box of one of its label maps, grown by a margin whose every side is jittered.

    Parameters are sampled here; the crop itself is TorchIO's deterministic ``Crop``. A subject whose label is
    empty is returned uncropped.

    Args:
        label_name: the label map defining the box (e.g. ``"cord"``).
        margin_mm: margin per axis (mm) before jitter.
        jitter_mm: each side's margin varies uniformly within ``± jitter_mm`` (never below 0).
    """

    def __init__(self, label_name: str, margin_mm: tuple[float, float, float], jitter_mm: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.label_name = label_name
        self.margin_mm = tuple(float(m) for m in margin_mm)
        self.jitter_mm = float(jitter_mm)
        self.args_names = ["label_name", "margin_mm", "jitter_mm"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        label = subject[self.label_name]
        mask = label.data[0].numpy()
        box = bounding_box(mask)
        if box is None:
            return subject
        jitter = torch.empty(3, 2).uniform_(-self.jitter_mm, self.jitter_mm).numpy()
        margins = tuple(
            (max(0.0, m + float(j[0])), max(0.0, m + float(j[1]))) for m, j in zip(self.margin_mm, jitter, strict=True)
        )
        start_stop = expand_box(box, mask.shape, label.spacing, margins)
        cropping = []
        for (start, stop), size in zip(start_stop, mask.shape, strict=True):
            cropping.extend([start, size - stop])
        return tio.Crop(tuple(cropping))(subject)
