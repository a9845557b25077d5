"""Fixed keys, label values and file-name conventions.

Tunable values live in :mod:`lesionseg.config`; this module holds only names that are part of a contract
(file suffixes, subject keys, the canonical orientation).
"""

from __future__ import annotations

#: Orientation of every array handed to the networks: RAS+ (increasing voxel index along the three axes
#: points to the subject's Right, Anterior and Superior), as TorchIO's ``ToCanonical`` and nibabel's
#: ``as_closest_canonical`` produce. Outputs are mapped back to the input's own axes and grid.
CANONICAL_AXCODES: tuple[str, str, str] = ("R", "A", "S")

#: Contrasts the phantom generator knows, in BIDS suffix spelling.
CONTRASTS: tuple[str, ...] = ("T2w", "T1w", "PSIR", "T2starw")

#: BIDS suffixes of anatomical contrasts, recognised at the end of a file name (``sub-01_PSIR.nii.gz``).
ANATOMICAL_SUFFIXES: tuple[str, ...] = (
    "T1w", "T2w", "T2starw", "T2star", "PDw", "FLAIR", "PSIR", "UNIT1", "MP2RAGE", "STIR", "MTS", "PDT2",
)

#: Deprecated BIDS suffixes and the contrast they declare (BIDS 1.5 replaced ``T2star`` by ``T2starw``).
SUFFIX_ALIASES: dict[str, str] = {"T2star": "T2starw"}

#: Label suffixes of the spinal-cord community BIDS datasets (derivatives/labels).
LESION_SUFFIX = "lesion-manual"
CORD_SUFFIX = "seg-manual"
#: Intervertebral discs (phantoms: the disc tissue between vertebral bodies), the target of the disc model.
DISC_SUFFIX = "disc-manual"
#: The second cervical vertebra (body and dens; phantoms reaching the top of the spine), the anchor of the levels.
C2_SUFFIX = "c2-manual"

#: Output file suffixes written by inference.
LESION_OUTPUT_SUFFIX = "lesionseg"
LESION_SOFT_OUTPUT_SUFFIX = "lesionseg-soft"
CORD_OUTPUT_SUFFIX = "seg"
#: Per-voxel variance over ensemble members and TTA flips.
UNCERTAINTY_OUTPUT_SUFFIX = "lesionseg-uncertainty"
#: A scan's completion record (``<stem>_lesionseg-record.json``, see :mod:`lesionseg.io.run_folder`).
RECORD_SUFFIX = "lesionseg-record"
#: the lesion mask whose values are the lesion table's ids
LESION_LABELED_OUTPUT_SUFFIX = "lesions-labeled"
#: Names of the masks and records inference writes, never taken as inputs when found in the output folder.
OUTPUT_SUFFIXES: tuple[str, ...] = tuple(
    f"_{s}"
    for s in (LESION_OUTPUT_SUFFIX, LESION_SOFT_OUTPUT_SUFFIX, UNCERTAINTY_OUTPUT_SUFFIX, CORD_OUTPUT_SUFFIX, RECORD_SUFFIX,
              LESION_LABELED_OUTPUT_SUFFIX)
)

#: Keys of a TorchIO subject.
IMAGE_KEY = "image"
LABEL_KEY = "label"

#: Binary label values.
BACKGROUND = 0
FOREGROUND = 1

NIFTI_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii")

#: Device names the commands accept (``--device``, ``train.device`` overrides): PyTorch's, plus ``auto``.
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?|mps"
