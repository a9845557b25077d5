"""Tissue classes of a phantom: the values of its rendered class map, indices of its intensity tables."""

from __future__ import annotations

from enum import IntEnum


class Tissue(IntEnum):
    """Tissue classes of the phantom (values of the rendered class map).

    The first eleven are those of the small-field-of-view phantoms; the rest appear on whole-field-of-view
    phantoms only (see :mod:`lesionseg.synth.body`); random compartments take the values from
    :data:`COMPARTMENT_BASE` on.
    """

    AIR = 0
    SOFT = 1
    BONE = 2
    DISC = 3
    CSF = 4
    CORD = 5
    LESION = 6
    CORD_MIMIC = 7
    TISSUE_MIMIC = 8
    GREY_MATTER = 9
    NERVE_ROOT = 10
    FAT = 11
    MUSCLE = 12
    SKIN = 13
    VESSEL_DARK = 14
    VESSEL_BRIGHT = 15
    DECOY_CORE = 16
    DECOY_RING = 17


#: Class value of the first random compartment of the soft tissue.
COMPARTMENT_BASE = 18
#: At most this many random compartments.
MAX_COMPARTMENTS = 8
#: Length of an intensity table (one entry per class value).
TABLE_SIZE = COMPARTMENT_BASE + MAX_COMPARTMENTS
#: Classes of the small-field-of-view phantoms.
BASE_TISSUES = 11
