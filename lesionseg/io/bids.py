"""BIDS discovery and subject-level splits.

Images: ``ROOT/sub-*/[ses-*/]anat/sub-*[_ses-*][_entity-value...]_<contrast>.nii[.gz]``.
Labels: ``ROOT/derivatives/labels/sub-*/[ses-*/]anat/<image stem>_<suffix>.nii[.gz]`` with suffix
``lesion-manual`` (lesions) and ``seg-manual`` (cord) by default, as in the spinal-cord community datasets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lesionseg.constants import CORD_SUFFIX, LESION_SUFFIX, NIFTI_EXTENSIONS
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

    @property
    def stem(self) -> str:
        """File name without extension, e.g. ``sub-001_T2w``."""
        return strip_nifti_extension(self.image)


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
