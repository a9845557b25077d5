"""Training augmentation from :class:`~lesionseg.config.AugmentConfig`, with TorchIO.

Spatial transforms move image and label together (labels nearest-neighbour); intensity transforms touch only
the image (TorchIO skips ``LabelMap``). Arrays are RAS, so axis 0 is left-right.
"""

from __future__ import annotations

import torchio as tio

from lesionseg.config import AugmentConfig


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
