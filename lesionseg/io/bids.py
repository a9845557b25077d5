"""BIDS discovery, subject-level splits, and the names of our outputs in a BIDS derivative dataset.

Images: ``ROOT/sub-*/[ses-*/]anat/sub-*[_ses-*][_entity-value...]_<contrast>.nii[.gz]``.
Labels: ``ROOT/derivatives/labels/sub-*/[ses-*/]anat/<image stem>_<suffix>.nii[.gz]`` with suffix
``lesion-manual`` (lesions) and ``seg-manual`` (cord) by default, as in the spinal-cord community datasets, and
``disc-manual`` (intervertebral discs; the phantoms have them) and ``c2-manual`` (C2, body and dens; phantoms that
reach the top of the spine).

Derivatives (``lesionseg infer --bids-derivatives``): each output that BIDS names keeps the source's entities, adds
``label-``/``desc-`` entities and takes a BIDS derivative suffix, with the source's suffix (its contrast) in ``desc``
so that the T2w and T1w scans of one session never share a name (:data:`DERIVATIVE_NAMES`), e.g.
``sub-01_ses-1_T2w.nii.gz`` -> ``sub-01/ses-1/anat/sub-01_ses-1_label-lesion_desc-T2w_mask.nii.gz``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lesionseg.constants import (
    C2_SUFFIX,
    CORD_OUTPUT_SUFFIX,
    CORD_SUFFIX,
    DISC_SUFFIX,
    LESION_LABELED_OUTPUT_SUFFIX,
    LESION_OUTPUT_SUFFIX,
    LESION_SOFT_OUTPUT_SUFFIX,
    LESION_SUFFIX,
    NIFTI_EXTENSIONS,
)
from lesionseg.errors import InputError
from lesionseg.io.nifti import strip_nifti_extension


@dataclass(frozen=True)
class BidsImage:
    """One image of a BIDS dataset and its labels (None when absent)."""

    subject: str
    session: str | None
    contrast: str
    image: Path
    lesion: Path | None
    cord: Path | None
    disc: Path | None = None
    c2: Path | None = None

    @property
    def stem(self) -> str:
        """File name without extension, e.g. ``sub-001_T2w``."""
        return strip_nifti_extension(self.image)


#: our output suffix -> (entities added after the source's, BIDS suffix); ``{contrast}`` is the source's suffix.
#: Masks and probabilistic and discrete segmentations as in the BIDS derivatives specification ("Segmentations");
#: ``label-SC`` for the spinal cord as in the spinal-cord community datasets. Outputs not listed keep their
#: lesionseg names and are listed in the derivative dataset's ``.bidsignore``.
DERIVATIVE_NAMES: dict[str, tuple[str, str]] = {
    LESION_OUTPUT_SUFFIX: ("label-lesion_desc-{contrast}", "mask"),
    CORD_OUTPUT_SUFFIX: ("label-SC_desc-{contrast}", "mask"),
    LESION_SOFT_OUTPUT_SUFFIX: ("label-lesion_desc-{contrast}", "probseg"),
    LESION_LABELED_OUTPUT_SUFFIX: ("desc-{contrast}lesions", "dseg"),
}

#: the file-name endings of our BIDS-named outputs (never taken as inputs in the output folder)
DERIVATIVE_ENDINGS: tuple[str, ...] = tuple(sorted({f"_{suffix}" for _, suffix in DERIVATIVE_NAMES.values()}))

_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")
#: BIDS datatype folders an image may sit in (an image anywhere else is written under ``anat``)
BIDS_DATATYPES = ("anat", "dwi", "func", "fmap", "perf")


@dataclass(frozen=True)
class BidsName:
    """A BIDS file name taken apart: ``sub-01_ses-1_acq-ax_T2w`` -> entities (sub, 01), (ses, 1), (acq, ax) and
    suffix ``T2w``; ``datatype`` is its folder (``anat``)."""

    entities: tuple[tuple[str, str], ...]
    suffix: str
    datatype: str = "anat"

    @property
    def folder(self) -> Path:
        """``sub-<label>/[ses-<label>/]<datatype>``."""
        values = dict(self.entities)
        session = [f"ses-{values['ses']}"] if "ses" in values else []
        return Path(f"sub-{values['sub']}", *session, self.datatype)

    def derivative(self, output_suffix: str, extension: str) -> str | None:
        """The BIDS derivative file name of one of our outputs (:data:`DERIVATIVE_NAMES`), None when BIDS has no
        name for it."""
        if output_suffix not in DERIVATIVE_NAMES:
            return None
        added, bids_suffix = DERIVATIVE_NAMES[output_suffix]
        source = "_".join(f"{key}-{value}" for key, value in self.entities)
        return f"{source}_{added.format(contrast=self.suffix)}_{bids_suffix}{extension}"


def source_stem(derivative: str, output_suffix: str = LESION_OUTPUT_SUFFIX) -> str | None:
    """The source scan's stem of a BIDS-named output (``sub-01_label-lesion_desc-T2w_mask.nii.gz`` ->
    ``sub-01_T2w``), None when the name is not that output's."""
    added, bids_suffix = DERIVATIVE_NAMES[output_suffix]
    pattern = re.escape(f"_{added}_{bids_suffix}").replace(re.escape("{contrast}"), "([A-Za-z0-9]+)")
    match = re.fullmatch(rf"(sub-.+?){pattern}\.nii(?:\.gz)?", derivative)
    return f"{match[1]}_{match[2]}" if match else None


def parse_bids_name(path: Path) -> BidsName | None:
    """The BIDS entities and suffix of a NIfTI file name, or None when it is not one (``sub-<label>`` first, then
    ``key-value`` pairs, then an alphanumeric suffix)."""
    *pairs, suffix = strip_nifti_extension(path).split("_")
    entities = [tuple(pair.split("-", 1)) for pair in pairs]
    well_formed = all(len(e) == 2 and _ALPHANUMERIC.fullmatch(e[0]) and _ALPHANUMERIC.fullmatch(e[1]) for e in entities)
    if not entities or not well_formed or entities[0][0] != "sub" or not _ALPHANUMERIC.fullmatch(suffix):
        return None
    return BidsName(tuple(entities), suffix, path.parent.name if path.parent.name in BIDS_DATATYPES else "anat")


def dataset_root(path: Path) -> Path | None:
    """The BIDS dataset a file or folder belongs to: the nearest folder with a ``dataset_description.json``, the
    folder itself first."""
    path = path.resolve()
    for folder in [path, *path.parents] if path.is_dir() else path.parents:
        if (folder / "dataset_description.json").is_file():
            return folder
    return None


@dataclass(frozen=True)
class Split:
    """Subject-level split: no subject appears in two parts."""

    train: tuple[BidsImage, ...]
    val: tuple[BidsImage, ...]
    test: tuple[BidsImage, ...]


def _find_label(labels_dir: Path, stem: str, suffix: str) -> Path | None:
    for extension in NIFTI_EXTENSIONS:
        candidate = labels_dir / f"{stem}_{suffix}{extension}"
        if candidate.is_file():
            return candidate
    return None


def discover(
    root: str | Path,
    contrasts: Sequence[str] = ("T2w",),
    *,
    lesion_suffix: str = LESION_SUFFIX,
    cord_suffix: str = CORD_SUFFIX,
) -> list[BidsImage]:
    """List the images of the given contrasts in a BIDS dataset, with their labels.

    Returns:
        Images sorted by path.

    Raises:
        InputError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected a BIDS dataset)")
    found: list[BidsImage] = []
    for anat in sorted([*root.glob("sub-*/anat"), *root.glob("sub-*/ses-*/anat")]):
        if not anat.is_dir():
            continue
        subject = anat.parts[len(root.parts)]
        session = anat.parent.name if anat.parent.name.startswith("ses-") else None
        relative = anat.relative_to(root)
        labels_dir = root / "derivatives" / "labels" / relative
        for path in sorted(anat.iterdir()):
            if path.name.startswith(".") or not path.name.endswith(NIFTI_EXTENSIONS):
                continue
            stem = strip_nifti_extension(path)
            contrast = stem.rsplit("_", 1)[-1]
            if contrast not in contrasts or not stem.startswith(f"{subject}_"):
                continue
            found.append(
                BidsImage(
                    subject=subject,
                    session=session,
                    contrast=contrast,
                    image=path,
                    lesion=_find_label(labels_dir, stem, lesion_suffix),
                    cord=_find_label(labels_dir, stem, cord_suffix),
                    disc=_find_label(labels_dir, stem, DISC_SUFFIX),
                    c2=_find_label(labels_dir, stem, C2_SUFFIX),
                )
            )
    return found


def split_subjects(
    images: Sequence[BidsImage],
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Split by subject, reproducibly from ``seed``; every subject lands in exactly one part.

    Sizes are rounded; when a fraction is positive and there are at least three subjects, that part gets at
    least one subject; training always keeps at least one.
    """
    subjects = sorted({image.subject for image in images})
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    count = len(subjects)

    def part_size(fraction: float) -> int:
        size = int(round(fraction * count))
        return max(size, 1) if fraction > 0 and count >= 3 else size

    n_test, n_val = part_size(test_fraction), part_size(val_fraction)
    while n_test + n_val >= count and (n_test or n_val):
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    test_subjects = set(order[:n_test])
    val_subjects = set(order[n_test : n_test + n_val])

    def select(chosen: set[str]) -> tuple[BidsImage, ...]:
        return tuple(image for image in images if image.subject in chosen)

    train_subjects = set(order[n_test + n_val :])
    return Split(train=select(train_subjects), val=select(val_subjects), test=select(test_subjects))
