"""Tissue intensities of each contrast (relative units, before acquisition effects).

- T2w: CSF bright, cord grey, lesions hyperintense.
- T1w (MPRAGE): CSF dark, cord brighter than CSF, lesions hypointense and faint.
- PSIR: signed (phase-sensitive real) values: CSF negative (dark), cord positive, lesions darker than cord.
"""

from __future__ import annotations

import numpy as np

from lesionseg.synth.anatomy import Tissue

#: Mean intensity per tissue; lesion values are drawn per subject within ``LESION_RANGE``.
TISSUE_MEANS: dict[str, dict[Tissue, float]] = {
    "T2w": {Tissue.AIR: 0.0, Tissue.SOFT: 0.14, Tissue.BONE: 0.20, Tissue.DISC: 0.50, Tissue.CSF: 1.0, Tissue.CORD: 0.38},
    "T1w": {Tissue.AIR: 0.0, Tissue.SOFT: 0.55, Tissue.BONE: 0.48, Tissue.DISC: 0.35, Tissue.CSF: 0.12, Tissue.CORD: 0.75},
    "PSIR": {Tissue.AIR: 0.0, Tissue.SOFT: 0.35, Tissue.BONE: 0.30, Tissue.DISC: 0.10, Tissue.CSF: -0.55, Tissue.CORD: 0.60},
}

#: Lesion intensity range per contrast, as a multiple of the cord intensity.
LESION_RANGE: dict[str, tuple[float, float]] = {
    "T2w": (1.55, 1.95),  # hyperintense
    "T1w": (0.78, 0.90),  # faintly hypointense
    "PSIR": (0.25, 0.55),  # darker than cord
}

#: Whether a contrast is a magnitude image (Rician noise, non-negative) or signed (Gaussian noise).
SIGNED: dict[str, bool] = {"T2w": False, "T1w": False, "PSIR": True}


def tissue_lookup(contrast: str, rng: np.random.Generator) -> np.ndarray:
    """Intensity per tissue class for one image, with a per-subject jitter of about 5%.

    Returns:
        float32 array indexed by :class:`Tissue` value.
    """
    means = TISSUE_MEANS[contrast]
    table = np.zeros(len(Tissue), dtype=np.float32)
    for tissue, mean in means.items():
        table[tissue] = mean * rng.uniform(0.95, 1.05)
    low, high = LESION_RANGE[contrast]
    table[Tissue.LESION] = table[Tissue.CORD] * rng.uniform(low, high)
    return table
