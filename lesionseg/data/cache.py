"""A disk cache of preprocessed training subjects, so a run skips decoding and resampling what an earlier run
(or an earlier attempt of this one) already prepared.

Within a run every volume is loaded and preprocessed once and kept in memory, so epochs after the first never
decode or resample. The cache carries that across runs (resumed runs, sweeps, the transfer experiment): an entry
is keyed by the SHA-256 of the image and label files plus a description of the preprocessing (its config, the
target, the extra labels), so editing a file or the preprocessing never serves a stale volume. Entries are
written atomically and read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torchio as tio

from lesionseg.config import Target
from lesionseg.data.subjects import label_path, load_subjects
from lesionseg.errors import InputError
from lesionseg.io.atomic import atomic_write
from lesionseg.io.bids import BidsImage
from lesionseg.io.checkpoint import sha256_file

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
_TEXT_KEYS = ("stem", "subject", "contrast")


def cache_key(item: BidsImage, labels: Sequence[str | None], description: str) -> str:
    """SHA-256 over the cache format, the preprocessing ``description`` and the bytes of every file used."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}\n{description}\n".encode())
    for path in (item.image, *labels):
        digest.update((sha256_file(path) if path is not None else "-").encode())
    return digest.hexdigest()


def _to_payload(subject: tio.Subject) -> dict:
    payload: dict = {key: str(subject[key]) for key in _TEXT_KEYS if key in subject}
    for name, image in subject.get_images_dict(intensity_only=False).items():
        payload[name] = {"data": image.data.clone(), "affine": torch.from_numpy(np.asarray(image.affine)),
                         "label": isinstance(image, tio.LabelMap)}
    return payload


def _from_payload(payload: dict) -> tio.Subject:
    entries: dict = {key: payload[key] for key in _TEXT_KEYS if key in payload}
    for name, value in payload.items():
        if isinstance(value, dict):
            kind = tio.LabelMap if value["label"] else tio.ScalarImage
            entries[name] = kind(tensor=value["data"], affine=value["affine"].numpy())
    return tio.Subject(entries)


def load_prepared_subjects(
    items: Sequence[BidsImage],
    target: Target,
    prepare: Callable[[tio.Subject], tio.Subject],
    *,
    description: str,
    cache_dir: Path | None,
    extra_labels: Sequence[Target] = (),
) -> list[tio.Subject]:
    """Load and ``prepare`` every item, through the cache in ``cache_dir`` when it is set.

    Raises:
        InputError: when no item could be loaded (see :func:`lesionseg.data.subjects.load_subjects`).
    """
    if cache_dir is None:
        return [prepare(subject) for subject in load_subjects(items, target, extra_labels=extra_labels)]
    cache_dir.mkdir(parents=True, exist_ok=True)
    subjects, hits = [], 0
    for item in items:
        labels = [label_path(item, name) for name in (target, *extra_labels)]
        path = cache_dir / f"{cache_key(item, labels, description)}.pt"
        if path.is_file():
            try:
                subjects.append(_from_payload(torch.load(path, weights_only=True)))
                hits += 1
                continue
            except Exception as error:  # a damaged entry is rebuilt
                logger.warning("%s: unreadable cache entry, rebuilding it (%s)", path, str(error).splitlines()[0])
        try:
            subject = prepare(load_subjects([item], target, extra_labels=extra_labels)[0])
        except InputError as error:
            logger.warning("skipped: %s", error)
            continue
        atomic_write(path, lambda temporary, subject=subject: torch.save(_to_payload(subject), temporary))
        subjects.append(subject)
    logger.info("preprocessed-volume cache %s: %d of %d reused", cache_dir, hits, len(items))
    if items and not subjects:
        raise InputError(f"{items[0].image.parent}: none of the {len(items)} images could be loaded")
    return subjects
