"""TorchIO subjects built from BIDS images through lesionseg's validated, canonical (RAS) loader."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torchio as tio

from lesionseg.config import Target
from lesionseg.constants import IMAGE_KEY, LABEL_KEY
from lesionseg.errors import InputError
from lesionseg.io.bids import BidsImage
from lesionseg.io.nifti import load_image, load_label_for

logger = logging.getLogger(__name__)


def label_path(item: BidsImage, target: Target) -> str | None:
    """The label file of ``item`` for ``target``, or None when it has none."""
    path = {"lesion": item.lesion, "cord": item.cord, "disc": item.disc, "c2": item.c2}[target]
    return str(path) if path is not None else None


def load_subject(
    item: BidsImage, target: Target, *, extra_labels: Sequence[Target] = ()
) -> tio.Subject:
    """Load one image and its ``target`` label as a :class:`torchio.Subject` in RAS orientation.

    ``extra_labels`` (e.g. ``("cord",)`` for the cascade) are added as label maps under their own names. The
    subject carries ``stem``, ``subject`` and ``contrast`` for bookkeeping.

    Raises:
        InputError: a required label is missing, or the image/label fails validation.
    """
    image = load_image(item.image)
    labels: dict[str, tio.LabelMap] = {}
    for key, name in ((LABEL_KEY, target), *((extra, extra) for extra in extra_labels)):
        path = label_path(item, name)
        if path is None:
            raise InputError(f"{item.image}: no {name} label in derivatives/labels")
        label = load_label_for(image, path)
        labels[key] = tio.LabelMap(tensor=torch.from_numpy(label.data)[None], affine=label.affine)
    return tio.Subject(
        {
            IMAGE_KEY: tio.ScalarImage(tensor=torch.from_numpy(image.data)[None], affine=image.affine),
            **labels,
            "stem": item.stem,
            "subject": item.subject,
            "contrast": item.contrast,
        }
    )


def load_subjects(
    items: Sequence[BidsImage],
    target: Target,
    transform: tio.Transform | None = None,
    *,
    extra_labels: Sequence[Target] = (),
) -> list[tio.Subject]:
    """Load (and optionally preprocess) every item; a failing item is logged and skipped.

    Raises:
        InputError: when no item could be loaded.
    """
    subjects: list[tio.Subject] = []
    for item in items:
        try:
            subject = load_subject(item, target, extra_labels=extra_labels)
        except InputError as error:
            logger.warning("skipped: %s", error)
            continue
        subjects.append(transform(subject) if transform is not None else subject)
    if items and not subjects:
        raise InputError(f"{items[0].image.parent}: none of the {len(items)} images could be loaded")
    return subjects
