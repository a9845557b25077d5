"""Domain-randomised phantoms (after SynthSeg, Billot et al. 2023): an endless training source whose images
vary in everything a segmentation should not depend on.

Each phantom draws, from its own seed:

- anatomy (:func:`~lesionseg.synth.anatomy.sample_anatomy`) with wider variation: cord size, CSF width,
  cord curvature, grey matter, field of view (sometimes cropped close to the cord), a tapering conus and nerve
  roots in the CSF (neither part of the cord); lesions of varied shape, count and size, and lesion mimics;
- intensities: either one of the known contrasts (T2w, T1w, PSIR, T2starw, with their lesion and grey-matter
  contrasts) or one intensity per tissue drawn at random (any contrast, inverted ones included; the cord always
  differs from its CSF, lesions from the cord, brighter or darker), optionally signed as in PSIR;
- resolution: isotropic, thick sagittal or thick axial slices, rendered with partial volume;
- artefacts: CSF whose contrast with the cord fades along the canal (flow, a narrow canal), tissue texture,
  bias field, Rician or Gaussian noise of a random level, and sometimes motion, ghosting, blur and gamma (TorchIO).

The result is on a RAS grid (orientation is irrelevant to training, which works on canonical arrays).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchio as tio
from scipy import ndimage

from lesionseg.constants import CONTRASTS
from lesionseg.synth import acquisition
from lesionseg.synth.anatomy import Anatomy, NerveRoot, Tissue, sample_anatomy
from lesionseg.synth.body import Region, sample_body
from lesionseg.synth.contrasts import SIGNED, body_lookup, grey_matter_lookup, tissue_lookup
from lesionseg.synth.tissues import COMPARTMENT_BASE, TABLE_SIZE
from lesionseg.transforms.cropping import bounding_box, box_slices, crop_affine, expand_box

#: Probability that the CSF's contrast with the cord fades along the canal
#: (:func:`~lesionseg.synth.acquisition.csf_contrast_along_canal`), on phantoms without a conus.
P_CSF_FADE = 0.4
#: Share of neck phantoms (whole fields of view and small ones) that reach the top of the spine (C2, the skull base).
P_TOP_OF_SPINE = 0.6
#: Share of phantoms whose cord ends in the field of view (the conus, with the cauda equina below it).
P_CONUS = 0.3


@dataclass(frozen=True, eq=False)
class RandomizedPhantom:
    """One domain-randomised phantom on a RAS grid.

    Attributes:
        image: float32 intensities.
        lesion: uint8 lesion mask; cord: uint8 cord mask (lesions included); disc: uint8 intervertebral discs;
            c2: uint8 C2 (body and dens; the anchor of the vertebral levels).
        affine: RAS affine (mm).
        description: what was drawn (contrast, spacing, artefacts), for logs and tests.
    """

    image: np.ndarray
    lesion: np.ndarray
    cord: np.ndarray
    affine: np.ndarray
    description: dict
    disc: np.ndarray | None = None
    c2: np.ndarray | None = None


def vary_anatomy(rng: np.random.Generator, anatomy: Anatomy, p_conus: float = P_CONUS) -> Anatomy:
    """Wider anatomical variation than the standard phantoms: cord size, CSF width, curvature, grey matter,
    a conus in the field of view on ``p_conus`` of them, and nerve roots."""
    scale = rng.uniform(0.6, 1.3)
    a, b = anatomy.cord_semi_axes_mm
    varied = dataclasses.replace(
        anatomy,
        cord_semi_axes_mm=(a * scale * rng.uniform(0.9, 1.1), b * scale * rng.uniform(0.9, 1.1)),
        csf_margin_mm=tuple(m * rng.uniform(0.5, 1.8) for m in anatomy.csf_margin_mm),
        centerline_amplitude_mm=tuple(m * rng.uniform(0.0, 2.5) for m in anatomy.centerline_amplitude_mm),
        grey_matter=bool(rng.random() < 0.6),
    )
    if rng.random() < p_conus:  # the cord ends (conus, tapering over 10 to 30 mm) in the lower part of the view
        start, taper = float(rng.uniform(-0.5, -0.1) * anatomy.fov_mm[2]), float(rng.uniform(10, 30))
        varied = dataclasses.replace(varied, cord_start_mm=start, conus_taper_mm=taper)
    return dataclasses.replace(varied, nerve_roots=_sample_nerve_roots(rng, varied))


def _sample_nerve_roots(rng: np.random.Generator, anatomy: Anatomy) -> tuple[NerveRoot, ...]:
    """Nerve roots in the CSF: (half the time) a pair of ventral and dorsal rootlets per side and vertebral level,
    running obliquely down from the cord's surface to the canal's edge; and below a conus the cauda equina, roots
    running down the canal from beside the conus to the bottom of the field of view."""
    (a, b), (margin_a, margin_b) = anatomy.cord_semi_axes_mm, anatomy.csf_margin_mm
    half_height = anatomy.fov_mm[2] / 2
    roots = []
    if rng.random() < 0.5:
        period = anatomy.vertebra_period_mm
        for z in np.arange(-half_height + rng.uniform(0.0, period), half_height, period):
            for side, ventral in ((-1, 1), (-1, -1), (1, 1), (1, -1)):
                if rng.random() < 0.8:
                    start = (side * 0.8 * a, ventral * 0.5 * b, z)
                    end = (side * (a + margin_a), ventral * rng.uniform(0.3, 0.9) * b, z - rng.uniform(0.0, 15.0))
                    roots.append(NerveRoot(start, end, float(rng.uniform(0.3, 0.7))))
    if np.isfinite(anatomy.cord_start_mm):
        for _ in range(int(rng.integers(6, 25))):
            angle, radius = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0.0, 1.0)) * 0.85
            u, v = radius * (a + margin_a) * np.cos(angle), radius * (b + margin_b) * np.sin(angle)
            top = anatomy.cord_start_mm + rng.uniform(0.0, anatomy.conus_taper_mm + 30.0)
            drift = rng.uniform(-1.5, 1.5, size=2)
            end = (u + drift[0], v + drift[1], -half_height - 5.0)
            roots.append(NerveRoot((u, v, top), end, float(rng.uniform(0.4, 1.0))))
    return tuple(roots)


def random_spacing(rng: np.random.Generator) -> tuple[tuple[float, float, float], str]:
    """A voxel size (mm, RAS axes) and its kind: isotropic 3D, thick sagittal or thick axial slices."""
    kind = str(rng.choice(["isotropic", "sagittal", "axial"], p=[0.4, 0.3, 0.3]))
    if kind == "isotropic":
        size = rng.uniform(0.6, 1.3)
        return (size, size, size), kind
    if kind == "sagittal":
        in_plane = rng.uniform(0.5, 1.0)
        return (rng.uniform(1.5, 4.0), in_plane, in_plane), kind
    in_plane = rng.uniform(0.4, 0.9)
    return (in_plane, in_plane, rng.uniform(2.5, 8.0)), kind


def random_intensities(
    rng: np.random.Generator, p_known_contrast: float, contrasts: Sequence[str] = CONTRASTS
) -> tuple[np.ndarray, bool, str]:
    """Intensity per tissue (indexed by :class:`Tissue`), whether the image is signed, and the contrast name
    (``random`` when the intensities are random); a known contrast is one of ``contrasts``."""
    if rng.random() < p_known_contrast:
        contrast = str(rng.choice(list(contrasts)))
        table = tissue_lookup(contrast, rng, (rng.random(), rng.random()))
        table = grey_matter_lookup(contrast, table, rng)
        table[Tissue.NERVE_ROOT] = table[Tissue.CORD] * rng.uniform(0.85, 1.15)
        return body_lookup(contrast, table, rng), SIGNED[contrast], contrast
    table = rng.uniform(0.0, 1.0, TABLE_SIZE).astype(np.float32)
    table[Tissue.AIR] = rng.uniform(0.0, 0.05)
    table[Tissue.VESSEL_DARK] = rng.uniform(0.0, 0.1)  # a flow void
    if rng.random() < 0.5:  # compartments of one tissue with a spread of intensities, as on real scans
        table[COMPARTMENT_BASE:] = table[Tissue.SOFT] * rng.uniform(0.5, 2.0, TABLE_SIZE - COMPARTMENT_BASE)
    while abs(table[Tissue.CORD] - table[Tissue.CSF]) < 0.25:  # the cord must be visible against its CSF
        table[Tissue.CSF] = rng.uniform(0.0, 1.0)
    cord = table[Tissue.CORD]
    table[Tissue.DECOY_CORE] = cord + rng.uniform(-0.1, 0.1)  # cord-like tubes outside the canal
    table[Tissue.DECOY_RING] = table[Tissue.CSF] + rng.uniform(-0.15, 0.15)
    # MS lesions hold more water: their signal moves from the cord's towards the CSF's, whatever the contrast
    # (hyperintense on T2w where CSF is bright, hypointense on T1w and PSIR where it is dark)
    sign = 1.0 if table[Tissue.CSF] > cord else -1.0
    step = rng.uniform(0.2, 0.6) * abs(table[Tissue.CSF] - cord) + 0.05
    table[Tissue.LESION] = cord + sign * step
    table[Tissue.CORD_MIMIC] = cord + sign * step * rng.uniform(0.3, 0.6)
    table[Tissue.TISSUE_MIMIC] = table[Tissue.LESION]
    table[Tissue.GREY_MATTER] = max(cord + rng.uniform(-0.08, 0.08), 0.0)  # subtler than any lesion
    table[Tissue.NERVE_ROOT] = max(cord + rng.uniform(-0.1, 0.1), 0.0)  # nerve tissue, as the cord's
    signed = bool(rng.random() < 0.15)
    if signed:  # phase-sensitive: air stays 0, tissues darker than the shift become negative
        table[1:] -= rng.uniform(0.2, 0.6)
    return table, signed, "random"


def _artefacts(image: np.ndarray, rng: np.random.Generator, signed: bool) -> tuple[np.ndarray, list[str]]:
    """Motion, ghosting, blur and (magnitude images) gamma, each with some probability (TorchIO)."""
    chosen = [name for name, p in (("motion", 0.15), ("ghosting", 0.15), ("blur", 0.3), ("gamma", 0.3)) if rng.random() < p]
    if signed and "gamma" in chosen:
        chosen.remove("gamma")
    if not chosen:
        return image, chosen
    transforms = {
        "motion": tio.RandomMotion(degrees=3, translation=3, num_transforms=2),
        "ghosting": tio.RandomGhosting(num_ghosts=(2, 6), intensity=(0.2, 0.6)),
        "blur": tio.RandomBlur(std=(0.3, 1.6)),  # mm; up to the smoothness of an averaged template
        "gamma": tio.RandomGamma(log_gamma=(-0.4, 0.4)),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**31 - 1)))
        scan = tio.ScalarImage(tensor=torch.from_numpy(image)[None])
        if "gamma" in chosen:  # gamma is defined on non-negative intensities
            scan.set_data(scan.data.clamp_min(0))
        for name in chosen:
            scan = transforms[name](scan)
    return scan.data[0].numpy().astype(np.float32), chosen


def _texture(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiply by smooth random texture (real tissue is never flat): up to 15% around 1."""
    strength = rng.uniform(0.0, 0.15)
    noise = ndimage.gaussian_filter(rng.standard_normal(image.shape).astype(np.float32), sigma=rng.uniform(0.8, 2.5))
    noise /= max(float(noise.std()), 1e-6)
    return (image * (1.0 + strength * noise)).astype(np.float32)


def _crop_around_cord(
    arrays: list[np.ndarray], affine: np.ndarray, spacing: tuple[float, float, float], rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """Crop the left-right and antero-posterior axes to the cord plus a random margin of 3 to 10 mm."""
    cord = arrays[2]
    box = bounding_box(cord)
    if box is None:
        return arrays, affine
    margins = rng.uniform(3.0, 10.0, size=2)
    # the whole superior-inferior extent is kept
    grown = expand_box(box, cord.shape, spacing, (float(margins[0]), float(margins[1]), cord.shape[2] * spacing[2]))
    region = box_slices(grown)
    return [np.ascontiguousarray(a[region]) for a in arrays], crop_affine(affine, grown)


def whole_fov_layout(
    rng: np.random.Generator,
) -> tuple[tuple[float, float, float], tuple[float, float, float], str, Region, tuple[float, float, float]]:
    """A whole field of view as hospitals acquire it: field of view and voxel size (mm, RAS), kind (``axial``
    whole-neck stack, long ``sagittal`` series, ``isotropic`` 3D volume), body region, and the sampled fraction
    of each voxel (below 1 along the slice axis: a slice gap)."""
    kind = str(rng.choice(["axial", "sagittal", "isotropic"], p=[0.45, 0.35, 0.2]))
    gap = float(rng.uniform(0.6, 0.9)) if rng.random() < 0.3 else 1.0
    if kind == "axial":
        region = str(rng.choice(["neck", "thorax", "lumbar"], p=[0.8, 0.1, 0.1]))
        in_plane_fov, in_plane, thickness = rng.uniform(160, 260), rng.uniform(0.6, 1.0), rng.uniform(4.0, 8.0)
        fov = (in_plane_fov, in_plane_fov * rng.uniform(0.8, 1.0), int(rng.integers(12, 31)) * thickness)
        return fov, (in_plane, in_plane, thickness), kind, region, (1.0, 1.0, gap)  # type: ignore[return-value]
    if kind == "sagittal":
        region = str(rng.choice(["neck", "thorax", "lumbar"]))
        length, in_plane, thickness = rng.uniform(200, 320), rng.uniform(0.6, 1.2), rng.uniform(2.0, 4.0)
        fov = (int(rng.integers(12, 21)) * thickness, length * rng.uniform(0.8, 1.0), length)
        return fov, (thickness, in_plane, in_plane), kind, region, (gap, 1.0, 1.0)  # type: ignore[return-value]
    region = "neck" if rng.random() < 0.7 else str(rng.choice(["thorax", "lumbar"]))
    size = rng.uniform(0.9, 1.2)
    fov = (rng.uniform(140, 220), rng.uniform(140, 220), rng.uniform(120, 220))
    return fov, (size, size, size), kind, region, (1.0, 1.0, 1.0)  # type: ignore[return-value]


def whole_fov_anatomy(rng: np.random.Generator, anatomy: Anatomy, region: Region, p_conus: float = P_CONUS) -> Anatomy:
    """:func:`vary_anatomy` plus what a long field of view of ``region`` holds: vertebrae of the region's height,
    the spine's curvature, the conus with the cauda equina below it (lumbar), and the body around the canal."""
    varied = vary_anatomy(rng, anatomy, p_conus)
    height = anatomy.fov_mm[2]
    changes: dict = {"centerline_amplitude_mm": (rng.uniform(0.0, 4.0), rng.uniform(2.0, max(3.0, 0.06 * height))),
                     "centerline_period_mm": (rng.uniform(1.5, 3.0) * height, rng.uniform(1.5, 3.0) * height)}
    if region != "neck":
        lumbar = region == "lumbar"
        changes["vertebra_period_mm"] = rng.uniform(30.0, 38.0) if lumbar else rng.uniform(22.0, 27.0)
        changes["disc_height_mm"] = rng.uniform(8.0, 12.0) if lumbar else rng.uniform(5.0, 8.0)
    if region == "lumbar":  # the conus in the upper part of a lumbar series, the cauda equina below it
        changes.update(cord_start_mm=float(rng.uniform(-0.1, 0.3) * height), conus_taper_mm=float(rng.uniform(15, 40)),
                       csf_margin_mm=(rng.uniform(3.0, 6.0), rng.uniform(3.0, 5.0)))
    varied = dataclasses.replace(varied, **changes)
    if region == "lumbar":
        varied = dataclasses.replace(varied, nerve_roots=_sample_nerve_roots(rng, varied))
    body = sample_body(rng, region, varied.canal_semi_axes_mm, height)  # type: ignore[arg-type]
    return dataclasses.replace(varied, body=body)


def _top_disc(rng: np.random.Generator, anatomy: Anatomy, region: Region, p_top_of_spine: float) -> float:
    """Where the C2-C3 disc's upper face lies (:attr:`Anatomy.top_disc_mm`): on ``p_top_of_spine`` of the neck
    scans, one of the phantom's discs 20 to 70 mm below the top of the field of view (C2 and the skull base above
    it); else none."""
    if region != "neck" or rng.random() >= p_top_of_spine:
        return float("inf")
    return anatomy.disc_top_below(anatomy.fov_mm[2] / 2 - rng.uniform(20.0, 70.0))


def _whole_fov_effects(
    scan: acquisition.RenderedScan, table: np.ndarray, spacing: tuple[float, float, float], kind: str,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, list[str]]:
    """Coil shading, fat-suppression failure and wrap-around on a whole-field-of-view scan: the image, the
    lesion, cord, disc and C2 fractions (cropped alike) and the affine."""
    image, affine, effects = scan.image, scan.affine, []
    fractions = [scan.lesion_fraction, scan.cord_fraction, scan.disc_fraction, scan.c2_fraction]
    if rng.random() < 0.4:
        image = acquisition.coil_shading(image, spacing, float(rng.uniform(60.0, 200.0)))
        effects.append("coil shading")
    if table[Tissue.FAT] < 0.15 and rng.random() < 0.5:
        extra = float(rng.uniform(0.3, 0.8) * np.abs(table).max())
        image = acquisition.fat_suppression_failure(image, scan.fat_fraction, extra, int(rng.integers(2**31 - 1)))
        effects.append("fat suppression failure")
    if rng.random() < 0.25:
        axis = int(rng.choice([0, 1] if kind == "axial" else [1, 2]))
        fold = int(rng.uniform(0.05, 0.15) * image.shape[axis])
        if fold > 0:
            image = acquisition.wrap_around(image, axis, fold)
            kept = np.arange(fold, scan.image.shape[axis] - fold)
            fractions = [np.take(f, kept, axis=axis) for f in fractions]
            affine = affine.copy()
            affine[:3, 3] += affine[:3, axis] * fold
            effects.append("wrap-around")
    return image, fractions, affine, effects


def random_phantom(
    rng: np.random.Generator,
    *,
    p_known_contrast: float = 0.5,
    contrasts: Sequence[str] = CONTRASTS,
    max_lesions: int = 6,
    p_no_lesion: float = 0.15,
    max_mimics: int = 3,
    p_whole_fov: float = 0.0,
    p_top_of_spine: float = P_TOP_OF_SPINE,
    p_conus: float = P_CONUS,
) -> RandomizedPhantom:
    """Draw and render one domain-randomised phantom (see the module docstring); ``p_whole_fov``: probability of
    a whole field of view (:func:`whole_fov_layout`) with the body around the canal; ``p_top_of_spine``: of a neck
    phantom reaching the top of the spine (small fields of view are neck ones); ``p_conus``: of a cord that ends in
    the field of view (:func:`vary_anatomy`; lumbar whole fields of view always show the conus)."""
    whole = p_whole_fov > 0 and rng.random() < p_whole_fov
    if whole:
        fov, spacing, kind, region, sampled = whole_fov_layout(rng)
    else:
        fov, sampled = (rng.uniform(36.0, 70.0), rng.uniform(48.0, 80.0), rng.uniform(64.0, 140.0)), (1.0, 1.0, 1.0)
    anatomy = sample_anatomy(rng, fov, max_lesions=max_lesions, p_no_lesion=p_no_lesion, max_mimics=max_mimics)
    if whole:
        anatomy = whole_fov_anatomy(rng, anatomy, region, p_conus)
    else:
        anatomy, region = vary_anatomy(rng, anatomy, p_conus), "neck"
        spacing, kind = random_spacing(rng)
        if p_whole_fov > 0 and rng.random() < 0.5:  # the neighbours of the canal (vessels, facets, muscles)
            body = sample_body(rng, "neck", anatomy.canal_semi_axes_mm, fov[2])  # type: ignore[arg-type]
            anatomy = dataclasses.replace(anatomy, body=body)
    anatomy = dataclasses.replace(anatomy, top_disc_mm=_top_disc(rng.spawn(1)[0], anatomy, region, p_top_of_spine))
    table, signed, contrast = random_intensities(rng, p_known_contrast, contrasts)
    offset = tuple(rng.uniform(-15.0, 15.0, size=3))
    scan = acquisition.render(anatomy, table, spacing, offset, subvoxel_mm=1.25 if whole else acquisition.SUBVOXEL_MM,
                              sampled_fraction=sampled)
    effects: list[str] = []
    # a faded CSF hides where the cord ends: a phantom with a conus keeps its contrast (a learnable label)
    if rng.random() < P_CSF_FADE and not np.isfinite(anatomy.cord_start_mm):
        faded = acquisition.csf_contrast_along_canal(scan.image, scan.csf_fraction, float(table[Tissue.CORD]),
                                                     float(table[Tissue.CSF]), float(rng.uniform(-0.2, 0.5)), rng)
        scan = dataclasses.replace(scan, image=faded)
        effects.append("CSF contrast along the canal")
    if whole:
        image, fractions, affine, more = _whole_fov_effects(scan, table, spacing, kind, rng)
        effects += more
    else:
        image, affine = scan.image, scan.affine
        fractions = [scan.lesion_fraction, scan.cord_fraction, scan.disc_fraction, scan.c2_fraction]
    seed = int(rng.integers(2**31 - 1))
    image = acquisition.add_bias_field(image, float(rng.uniform(0.0, 0.6)), seed)
    noise = float(rng.uniform(0.005, 0.08))
    image = acquisition.add_noise(image, noise * float(np.abs(table).max()), signed=signed, seed=seed + 1)
    image = _texture(image, rng)
    image, artefacts = _artefacts(image, rng, signed)
    lesion, cord, disc, c2 = ((fraction >= 0.5).astype(np.uint8) for fraction in fractions)
    cord |= lesion
    if not whole and rng.random() < 0.25:  # a small field of view around the cord, as on many axial acquisitions
        (image, lesion, cord, disc, c2), affine = _crop_around_cord([image, lesion, cord, disc, c2], affine, spacing,
                                                                    rng)
        artefacts.append("small field of view")
    description = {"contrast": contrast, "signed": signed, "spacing_mm": [round(s, 2) for s in spacing],
                   "resolution": kind, "noise": round(noise, 3), "artefacts": effects + artefacts,
                   "lesions": len(anatomy.lesions), "mimics": len(anatomy.mimics),
                   "conus": bool(np.isfinite(anatomy.cord_start_mm)), "nerve_roots": len(anatomy.nerve_roots),
                   "body": anatomy.body.region if anatomy.body is not None else None,
                   "top_of_spine": bool(np.isfinite(anatomy.top_disc_mm)),
                   "field_of_view_mm": [round(float(f), 1) for f in fov]}
    return RandomizedPhantom(image=image, lesion=lesion, cord=cord, affine=affine, description=description, disc=disc,
                            c2=c2)
