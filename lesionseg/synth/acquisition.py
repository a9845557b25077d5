"""Turning an :class:`~lesionseg.synth.anatomy.Anatomy` into a scan: partial volume on an anisotropic grid,
bias field (TorchIO), Rician or Gaussian noise (MONAI / TorchIO), intensity scale and offset, and a random
storage orientation (nibabel).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torchio as tio
from monai.transforms import RandRicianNoise
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform
from scipy import ndimage

from lesionseg.synth.anatomy import Anatomy, Tissue

#: Sub-voxel size (mm) used to integrate partial volume; each voxel is sampled at about this pitch.
SUBVOXEL_MM = 0.5
#: Upper bound on sub-samples per axis.
MAX_SUBSAMPLES = 6
#: Sub-voxel points rendered at once, to bound memory on large grids.
POINTS_PER_SLAB = 4_000_000


@dataclass(frozen=True, eq=False)
class RenderedScan:
    """One contrast of one subject on its acquisition grid (RAS voxel order).

    Attributes:
        image: float32 noiseless intensities with partial volume.
        lesion_fraction: float32 fraction of each voxel occupied by lesion.
        cord_fraction: float32 fraction occupied by cord (lesions included).
        affine: RAS affine (world mm).
        fat_fraction: float32 fraction occupied by fat (whole-field-of-view phantoms; zeros otherwise).
        csf_fraction: float32 fraction occupied by CSF.
        disc_fraction: float32 fraction occupied by intervertebral disc.
        c2_fraction: float32 fraction occupied by C2 (its bone; zeros without a top disc).
    """

    image: np.ndarray
    lesion_fraction: np.ndarray
    cord_fraction: np.ndarray
    affine: np.ndarray
    fat_fraction: np.ndarray
    csf_fraction: np.ndarray
    disc_fraction: np.ndarray
    c2_fraction: np.ndarray


def grid_shape(fov_mm: tuple[float, float, float], spacing_mm: tuple[float, float, float]) -> tuple[int, int, int]:
    """Voxels per axis covering ``fov_mm`` at ``spacing_mm``."""
    return tuple(max(1, math.ceil(f / s - 1e-6)) for f, s in zip(fov_mm, spacing_mm, strict=True))  # type: ignore[return-value]


def render(
    anatomy: Anatomy,
    intensity_per_tissue: np.ndarray,
    spacing_mm: tuple[float, float, float],
    origin_offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    *,
    subvoxel_mm: float = SUBVOXEL_MM,
    sampled_fraction: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> RenderedScan:
    """Render ``anatomy`` on a RAS grid covering its field of view, integrating partial volume.

    Each voxel is the mean of sub-voxel samples about ``subvoxel_mm`` apart, so a 3 mm slice mixes the
    tissues it crosses as a real thick slice does. ``sampled_fraction`` below 1 on an axis samples only that
    central part of each voxel: slices thinner than their spacing, with a gap between them.
    """
    shape = grid_shape(anatomy.fov_mm, spacing_mm)
    factors = [min(MAX_SUBSAMPLES, max(1, math.ceil(s * f / subvoxel_mm)))
               for s, f in zip(spacing_mm, sampled_fraction, strict=True)]
    centres = [(np.arange(n) - (n - 1) / 2.0) * s for n, s in zip(shape, spacing_mm, strict=True)]
    sub_offsets = [((np.arange(f) + 0.5) / f - 0.5) * s * part
                   for f, s, part in zip(factors, spacing_mm, sampled_fraction, strict=True)]
    sub_axes = [(c[:, None] + o[None, :]).reshape(-1) for c, o in zip(centres, sub_offsets, strict=True)]

    image = np.empty(shape, dtype=np.float32)
    lesion = np.empty(shape, dtype=np.float32)
    cord = np.empty(shape, dtype=np.float32)
    fat = np.zeros(shape, dtype=np.float32)
    csf = np.empty(shape, dtype=np.float32)
    disc = np.empty(shape, dtype=np.float32)
    c2 = np.zeros(shape, dtype=np.float32)
    points_per_x = factors[0] * len(sub_axes[1]) * len(sub_axes[2])
    slab = max(1, POINTS_PER_SLAB // points_per_x)
    y = sub_axes[1][None, :, None]
    z = sub_axes[2][None, None, :]
    for start in range(0, shape[0], slab):
        stop = min(shape[0], start + slab)
        x = sub_axes[0][start * factors[0] : stop * factors[0], None, None]
        tissue = anatomy.render(x, y, z)
        block = (stop - start, factors[0], shape[1], factors[1], shape[2], factors[2])
        image[start:stop] = intensity_per_tissue[tissue].reshape(block).mean(axis=(1, 3, 5))
        is_lesion = tissue == Tissue.LESION
        lesion[start:stop] = is_lesion.reshape(block).mean(axis=(1, 3, 5))
        in_cord = np.isin(tissue, (Tissue.CORD, Tissue.CORD_MIMIC, Tissue.GREY_MATTER)) | is_lesion
        cord[start:stop] = in_cord.reshape(block).mean(axis=(1, 3, 5))
        csf[start:stop] = (tissue == Tissue.CSF).reshape(block).mean(axis=(1, 3, 5))
        disc[start:stop] = (tissue == Tissue.DISC).reshape(block).mean(axis=(1, 3, 5))
        if np.isfinite(anatomy.top_disc_mm):
            in_c2 = (tissue == Tissue.BONE) & anatomy.c2(x, y, z)
            c2[start:stop] = in_c2.reshape(block).mean(axis=(1, 3, 5))
        if anatomy.body is not None:
            fat[start:stop] = (tissue == Tissue.FAT).reshape(block).mean(axis=(1, 3, 5))

    affine = np.diag([*spacing_mm, 1.0]).astype(float)
    affine[:3, 3] = [c[0] for c in centres]
    affine[:3, 3] += np.asarray(origin_offset_mm, dtype=float)
    return RenderedScan(image=image, lesion_fraction=lesion, cord_fraction=cord, affine=affine, fat_fraction=fat,
                        csf_fraction=csf, disc_fraction=disc, c2_fraction=c2)


def csf_contrast_along_canal(
    image: np.ndarray, csf_fraction: np.ndarray, cord_intensity: float, csf_intensity: float, low: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """CSF whose contrast with the cord changes along the canal (axis 2), as on real scans where CSF flow,
    pulsation and a narrow lower-cervical canal fade it: the CSF's intensity becomes
    ``cord + (csf - cord) * f(z)``, ``f`` a smooth random profile between ``low`` and 1 (``low`` near 0: the CSF
    nearly as the cord on some slices; below 0: the contrast reversed)."""
    noise = ndimage.gaussian_filter1d(rng.standard_normal(image.shape[2] + 8), sigma=rng.uniform(2.0, 6.0))[4:-4]
    span = max(float(np.ptp(noise)), 1e-6)
    profile = low + (1.0 - low) * (noise - noise.min()) / span
    change = (csf_intensity - cord_intensity) * (profile - 1.0)
    return (image + csf_fraction * change[None, None, :].astype(np.float32)).astype(np.float32)


def wrap_around(image: np.ndarray, axis: int, fold: int) -> np.ndarray:
    """Aliasing of a field of view too small along the phase-encoding ``axis``: the ``fold`` voxels at each end
    are cut off and added onto the opposite end (the image loses ``2 * fold`` voxels along ``axis``)."""
    inside = np.take(image, np.arange(fold, image.shape[axis] - fold), axis=axis).copy()
    low = np.take(image, np.arange(fold), axis=axis)
    high = np.take(image, np.arange(image.shape[axis] - fold, image.shape[axis]), axis=axis)
    end = [slice(None)] * image.ndim
    end[axis] = slice(inside.shape[axis] - fold, None)
    inside[tuple(end)] += low
    end[axis] = slice(0, fold)
    inside[tuple(end)] += high
    return inside


def coil_shading(image: np.ndarray, spacing_mm: tuple[float, float, float], length_mm: float) -> np.ndarray:
    """The sensitivity of a posterior (spine) receive coil: signal falls off towards anterior (``Y``) as
    ``exp(-distance / length_mm)``."""
    distance = np.arange(image.shape[1]) * spacing_mm[1]
    return (image * np.exp(-distance / length_mm)[None, :, None]).astype(np.float32)


def fat_suppression_failure(
    image: np.ndarray, fat_fraction: np.ndarray, extra: float, seed: int
) -> np.ndarray:
    """Fat suppression that fails in part of the field of view (off-resonance): fat regains up to ``extra``
    intensity where a smooth random field is high."""
    field = add_bias_field(np.ones_like(image), 0.8, seed)
    weight = np.clip((field - field.mean()) / max(float(field.std()), 1e-6), 0.0, 2.0) / 2.0
    return (image + extra * fat_fraction * weight).astype(np.float32)


def add_bias_field(image: np.ndarray, coefficients: float, seed: int) -> np.ndarray:
    """Multiply by a smooth random bias field (TorchIO ``RandomBiasField``), reproducibly from ``seed``."""
    if coefficients <= 0:
        return image
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transform = tio.RandomBiasField(coefficients=coefficients, order=3)
        biased = transform(tio.ScalarImage(tensor=torch.from_numpy(image)[None]))
    return biased.data[0].numpy().astype(np.float32)


def add_noise(image: np.ndarray, sigma: float, *, signed: bool, seed: int) -> np.ndarray:
    """Add noise of standard deviation ``sigma``: Rician for magnitude images (MONAI ``RandRicianNoise``),
    Gaussian for signed (phase-sensitive) images (TorchIO ``RandomNoise``)."""
    if sigma <= 0:
        return image
    if signed:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            noisy = tio.RandomNoise(std=(sigma, sigma))(tio.ScalarImage(tensor=torch.from_numpy(image)[None]))
        return noisy.data[0].numpy().astype(np.float32)
    rician = RandRicianNoise(prob=1.0, std=sigma, relative=False, sample_std=False)
    rician.set_random_state(seed=seed)
    return np.asarray(rician(image[None]))[0].astype(np.float32)


ALL_AXCODES: tuple[str, ...] = tuple(
    "".join(pair[i] for pair, i in zip(perm, flips, strict=True))
    for perm in itertools.permutations((("L", "R"), ("P", "A"), ("I", "S")))
    for flips in itertools.product((0, 1), repeat=3)
)


def reorient(arrays: list[np.ndarray], affine: np.ndarray, axcodes: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Store RAS arrays in another voxel order ``axcodes`` (e.g. ``"PSR"``), keeping the world positions."""
    transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(tuple(axcodes)))
    new_affine = affine @ inv_ornt_aff(transform, arrays[0].shape)
    return [np.ascontiguousarray(apply_orientation(a, transform)) for a in arrays], new_affine
