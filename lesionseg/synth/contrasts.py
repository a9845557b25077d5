"""Tissue intensities of each contrast (relative units, before acquisition effects).

- T2w: CSF bright, cord grey, lesions hyperintense.
- T1w (MPRAGE): CSF dark, cord brighter than CSF, lesions hypointense and faint.
- PSIR: signed (phase-sensitive real) values: CSF negative (dark), cord positive, lesions darker than cord.
- T2starw (axial multi-echo gradient echo, e.g. MEDIC / MERGE): CSF bright but less than on T2w, grey matter clearly
  brighter than white matter, lesions hyperintense. On the real T2*w of ``../shared/data/real/sct-errsm30`` (inside
  its manual cord mask, slice by slice) the grey matter is 1.20-1.34 (90th percentile) to 1.26-1.46 (98th) times
  the white matter (20th percentile), and the CSF around the cord (75th percentile of a 1-4 voxel ring) 1.61-1.86
  times: hence cord 0.58 against CSF 1.0 here.
"""

from __future__ import annotations

import numpy as np

from lesionseg.synth.tissues import COMPARTMENT_BASE, TABLE_SIZE, Tissue

#: Mean intensity per tissue; lesion values are drawn per subject within ``LESION_RANGE``.
TISSUE_MEANS: dict[str, dict[Tissue, float]] = {
    "T2w": {Tissue.AIR: 0.0, Tissue.SOFT: 0.14, Tissue.BONE: 0.20, Tissue.DISC: 0.50, Tissue.CSF: 1.0, Tissue.CORD: 0.38},
    "T1w": {Tissue.AIR: 0.0, Tissue.SOFT: 0.55, Tissue.BONE: 0.48, Tissue.DISC: 0.35, Tissue.CSF: 0.12, Tissue.CORD: 0.75},
    "PSIR": {Tissue.AIR: 0.0, Tissue.SOFT: 0.35, Tissue.BONE: 0.30, Tissue.DISC: 0.10, Tissue.CSF: -0.55, Tissue.CORD: 0.60},
    "T2starw": {Tissue.AIR: 0.0, Tissue.SOFT: 0.22, Tissue.BONE: 0.15, Tissue.DISC: 0.55, Tissue.CSF: 1.0, Tissue.CORD: 0.58},
}

#: Lesion intensity range per contrast, as a multiple of the cord intensity.
LESION_RANGE: dict[str, tuple[float, float]] = {
    "T2w": (1.55, 1.95),  # hyperintense
    "T1w": (0.78, 0.90),  # faintly hypointense
    "PSIR": (0.25, 0.55),  # darker than cord
    "T2starw": (1.4, 1.7),  # hyperintense, brighter than the grey matter
}

#: Intensity range of faint in-cord lesion mimics, as a multiple of the cord intensity (between cord and lesion).
CORD_MIMIC_RANGE: dict[str, tuple[float, float]] = {
    "T2w": (1.2, 1.4),
    "T1w": (0.90, 0.95),
    "PSIR": (0.65, 0.85),
    "T2starw": (1.1, 1.2),
}

#: Grey-matter intensity range per contrast, as a multiple of the cord (white matter) intensity, for the phantoms
#: whose anatomy renders the grey matter (60% of the domain-randomised ones; standard ones with
#: ``synth.grey_matter``): slightly brighter on T2w, darker on T1w (errsm30 T1w: the cord's 5th percentile 0.77-0.89
#: times its median), clearly darker on PSIR, as conspicuous as on real gradient-echo scans on T2starw (see above).
GREY_MATTER_RANGE: dict[str, tuple[float, float]] = {
    "T2w": (1.0, 1.2), "T1w": (0.85, 0.95), "PSIR": (0.7, 0.9), "T2starw": (1.2, 1.38),
}

#: Whole-field-of-view tissues per contrast: (low, high) range of each, drawn per image. Fat is bright on T1w and
#: on turbo-spin-echo T2w, dark where fat suppression works (drawn separately); vessels are flow voids or
#: inflow-bright.
BODY_RANGES: dict[str, dict[Tissue, tuple[float, float]]] = {
    "T2w": {Tissue.FAT: (0.5, 0.9), Tissue.MUSCLE: (0.06, 0.16), Tissue.SKIN: (0.2, 0.5),
            Tissue.VESSEL_DARK: (0.0, 0.05), Tissue.VESSEL_BRIGHT: (0.6, 1.0)},
    "T1w": {Tissue.FAT: (0.85, 1.0), Tissue.MUSCLE: (0.35, 0.5), Tissue.SKIN: (0.5, 0.8),
            Tissue.VESSEL_DARK: (0.0, 0.08), Tissue.VESSEL_BRIGHT: (0.6, 1.0)},
    "PSIR": {Tissue.FAT: (0.6, 0.8), Tissue.MUSCLE: (0.15, 0.3), Tissue.SKIN: (0.3, 0.5),
             Tissue.VESSEL_DARK: (-0.1, 0.05), Tissue.VESSEL_BRIGHT: (0.4, 0.7)},
    "T2starw": {Tissue.FAT: (0.1, 0.6), Tissue.MUSCLE: (0.1, 0.25), Tissue.SKIN: (0.2, 0.5),  # fat: water excitation
                Tissue.VESSEL_DARK: (0.0, 0.05), Tissue.VESSEL_BRIGHT: (0.6, 1.0)},
}

#: Whether a contrast is a magnitude image (Rician noise, non-negative) or signed (Gaussian noise).
SIGNED: dict[str, bool] = {"T2w": False, "T1w": False, "PSIR": True, "T2starw": False}


def tissue_lookup(contrast: str, rng: np.random.Generator, mimic_levels: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Intensity per tissue class for one image, with a per-subject jitter of about 5%.

    Lesion mimics take no draw from ``rng`` (an image with mimics is acquired exactly as the same image without
    them): ``mimic_levels`` place the in-cord mimics within :data:`CORD_MIMIC_RANGE` and the soft-tissue
    mimics within :data:`LESION_RANGE` (0 = low end, 1 = high end).

    Returns:
        float32 array indexed by :class:`Tissue` value.
    """
    means = TISSUE_MEANS[contrast]
    table = np.zeros(TABLE_SIZE, dtype=np.float32)
    for tissue, mean in means.items():
        table[tissue] = mean * rng.uniform(0.95, 1.05)
    low, high = LESION_RANGE[contrast]
    table[Tissue.LESION] = table[Tissue.CORD] * rng.uniform(low, high)
    (mimic_low, mimic_high), (cord_level, tissue_level) = CORD_MIMIC_RANGE[contrast], mimic_levels
    table[Tissue.CORD_MIMIC] = table[Tissue.CORD] * (mimic_low + cord_level * (mimic_high - mimic_low))
    table[Tissue.TISSUE_MIMIC] = table[Tissue.CORD] * (low + tissue_level * (high - low))  # as bright (dark) as a lesion
    table[Tissue.GREY_MATTER] = table[Tissue.CORD]  # rendered only by anatomies with grey matter
    table[Tissue.NERVE_ROOT] = table[Tissue.CORD]  # nerve tissue; rendered only by anatomies with nerve roots
    return table


def grey_matter_lookup(contrast: str, table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``table`` with a grey-matter intensity drawn within :data:`GREY_MATTER_RANGE` (a copy)."""
    table = table.copy()
    table[Tissue.GREY_MATTER] = table[Tissue.CORD] * rng.uniform(*GREY_MATTER_RANGE[contrast])
    return table


def body_lookup(contrast: str, table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``table`` with intensities for the whole-field-of-view tissues of ``contrast`` (a copy): fat (suppressed
    a third of the time), muscle, skin, vessels, and each random compartment at 0.5 to 2 times the soft tissue's."""
    table = table.copy()
    for tissue, (low, high) in BODY_RANGES[contrast].items():
        table[tissue] = rng.uniform(low, high)
    if rng.random() < 1 / 3:  # fat suppression
        table[Tissue.FAT] = rng.uniform(0.0, 0.1)
    table[Tissue.DECOY_CORE] = table[Tissue.CORD] * rng.uniform(0.85, 1.15)  # a cord in its CSF, outside the canal
    table[Tissue.DECOY_RING] = table[Tissue.CSF] * rng.uniform(0.7, 1.1)
    table[COMPARTMENT_BASE:] = table[Tissue.SOFT] * rng.uniform(0.5, 2.0, TABLE_SIZE - COMPARTMENT_BASE)
    return table

