"""Synthetic BIDS datasets of spinal-cord phantoms.

Layout written by :func:`make_dataset` (the convention of the spinal-cord community datasets)::

    OUT/dataset_description.json
    OUT/participants.tsv
    OUT/sub-001/anat/sub-001_T2w.nii.gz
    OUT/derivatives/labels/sub-001/anat/sub-001_T2w_lesion-manual.nii.gz
    OUT/derivatives/labels/sub-001/anat/sub-001_T2w_seg-manual.nii.gz

Subject ``i`` depends only on ``(seed, i)``: asking for more subjects adds subjects without changing the
first ones. All contrasts of a subject share anatomy and lesions.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lesionseg.config import AcquisitionConfig, SynthConfig
from lesionseg.constants import C2_SUFFIX, CORD_SUFFIX, DISC_SUFFIX, LESION_SUFFIX
from lesionseg.errors import OutputError
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.nifti import save_image
from lesionseg.synth import acquisition
from lesionseg.synth.anatomy import Anatomy, sample_anatomy
from lesionseg.synth.body import sample_body
from lesionseg.synth.contrasts import SIGNED, body_lookup, grey_matter_lookup, tissue_lookup

#: Stable per-contrast stream ids for seeding (independent of the order contrasts are asked for).
_CONTRAST_STREAM = {"T2w": 1, "T1w": 2, "PSIR": 3, "T2starw": 4}
#: Stream id of a subject's body (``synth.body``).
_BODY_STREAM = 9
#: ``top_of_spine``: the C2-C3 disc's upper face lies at the first disc this far below the top of the field of view
#: (mm)
TOP_DISC_DEPTH_MM = 45.0


@dataclass(frozen=True, eq=False)
class Phantom:
    """One contrast of one subject, as stored (native voxel order ``axcodes``).

    Attributes:
        image: int16 (magnitude contrasts) or float32 (PSIR) scan.
        lesion: uint8 0/1 lesion mask (voxels at least half lesion).
        cord: uint8 0/1 cord mask (voxels at least half cord, lesions included).
        affine: voxel-to-world affine (mm).
        axcodes: storage orientation, e.g. ``"PSR"``.
        disc: uint8 0/1 intervertebral discs (voxels at least half disc).
        c2: uint8 0/1 C2, body and dens (voxels at least half its bone; empty below the top of the spine).
    """

    image: np.ndarray
    lesion: np.ndarray
    cord: np.ndarray
    affine: np.ndarray
    axcodes: str
    disc: np.ndarray
    c2: np.ndarray



@dataclass(frozen=True)
class SubjectSummary:
    """What was written for one subject."""

    subject: str
    lesions: int
    lesion_voxels: dict[str, int]
    files: tuple[str, ...]


def subject_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The random generator of subject ``index`` (and contrast ``stream``) for a dataset ``seed``."""
    return np.random.default_rng([seed, index, stream])


def make_phantom(
    anatomy: Anatomy,
    contrast: str,
    acquisition_config: AcquisitionConfig,
    rng: np.random.Generator,
    *,
    random_orientation: bool = True,
) -> Phantom:
    """Render and acquire one contrast of ``anatomy``."""
    table = tissue_lookup(contrast, rng, anatomy.mimic_levels)
    if anatomy.body is not None:  # drawn from a stream of its own: the rest of the phantom is as without a body
        table = body_lookup(contrast, table, rng.spawn(1)[0])
    if anatomy.grey_matter:  # a stream of its own as well
        table = grey_matter_lookup(contrast, table, rng.spawn(1)[0])
    offset_mm = tuple(rng.uniform(-20.0, 20.0, size=3))
    scan = acquisition.render(anatomy, table, acquisition_config.spacing_mm, offset_mm)
    seed = int(rng.integers(2**31 - 1))
    image = acquisition.add_bias_field(scan.image, acquisition_config.bias_field, seed)
    signal = float(np.abs(table).max())
    image = acquisition.add_noise(image, acquisition_config.noise_fraction * signal, signed=SIGNED[contrast], seed=seed + 1)
    scale = rng.uniform(200.0, 2000.0)
    if SIGNED[contrast]:
        stored = (image * scale).astype(np.float32)
    else:
        offset = rng.uniform(0.0, 40.0)
        stored = np.clip(np.rint(image * scale + offset), 0, np.iinfo(np.int16).max).astype(np.int16)
    lesion = (scan.lesion_fraction >= 0.5).astype(np.uint8)
    cord = ((scan.cord_fraction >= 0.5) | (lesion > 0)).astype(np.uint8)
    axcodes = str(rng.choice(acquisition.ALL_AXCODES)) if random_orientation else "RAS"
    disc, c2 = ((fraction >= 0.5).astype(np.uint8) for fraction in (scan.disc_fraction, scan.c2_fraction))
    (stored, lesion, cord, disc, c2), affine = acquisition.reorient([stored, lesion, cord, disc, c2], scan.affine,
                                                                    axcodes)
    return Phantom(image=stored, lesion=lesion, cord=cord, affine=affine, axcodes=axcodes, disc=disc, c2=c2)


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def make_subject(out: Path, index: int, config: SynthConfig) -> SubjectSummary:
    """Write every contrast of subject ``index`` (``sub-{index+1:03d}``) under ``out``."""
    subject = f"sub-{index + 1:03d}"
    anatomy = sample_anatomy(
        subject_rng(config.seed, index), config.fov_mm, max_lesions=config.max_lesions, p_no_lesion=config.p_no_lesion,
        max_mimics=config.max_mimics,
    )
    if config.grey_matter:
        anatomy = dataclasses.replace(anatomy, grey_matter=True)
    if config.top_of_spine:
        top_disc = anatomy.disc_top_below(config.fov_mm[2] / 2 - TOP_DISC_DEPTH_MM)
        anatomy = dataclasses.replace(anatomy, top_disc_mm=top_disc)
    if config.body is not None:
        body = sample_body(subject_rng(config.seed, index, _BODY_STREAM), config.body, anatomy.canal_semi_axes_mm,
                           config.fov_mm[2])
        anatomy = dataclasses.replace(anatomy, body=body)
    files: list[str] = []
    lesion_voxels: dict[str, int] = {}
    for contrast in config.contrasts:
        rng = subject_rng(config.seed, index, _CONTRAST_STREAM[contrast])
        phantom = make_phantom(
            anatomy, contrast, config.acquisition[contrast], rng, random_orientation=config.random_orientation
        )
        stem = f"{subject}_{contrast}"
        image_path = out / subject / "anat" / f"{stem}.nii.gz"
        labels = out / "derivatives" / "labels" / subject / "anat"
        save_image(phantom.image, phantom.affine, image_path, dtype=phantom.image.dtype.type)
        save_image(phantom.lesion, phantom.affine, labels / f"{stem}_{LESION_SUFFIX}.nii.gz", dtype=np.uint8)
        save_image(phantom.cord, phantom.affine, labels / f"{stem}_{CORD_SUFFIX}.nii.gz", dtype=np.uint8)
        save_image(phantom.disc, phantom.affine, labels / f"{stem}_{DISC_SUFFIX}.nii.gz", dtype=np.uint8)
        if config.top_of_spine:
            save_image(phantom.c2, phantom.affine, labels / f"{stem}_{C2_SUFFIX}.nii.gz", dtype=np.uint8)
        _write_json(image_path.with_name(f"{stem}.json"), {"Synthetic": True, "StorageAxcodes": phantom.axcodes})
        files.append(str(image_path.relative_to(out)))
        lesion_voxels[contrast] = int(phantom.lesion.sum())
    return SubjectSummary(subject=subject, lesions=len(anatomy.lesions), lesion_voxels=lesion_voxels, files=tuple(files))


GENERATOR_NAME = "lesionseg synth"


def check_phantom_target(out: Path) -> None:
    """Phantoms go into a new or empty folder, or over an earlier phantom dataset (its
    ``dataset_description.json`` names ``lesionseg synth``): never over a user's files.

    Raises:
        OutputError: ``out`` is a file, or a non-empty folder that is not a phantom dataset.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file; phantoms need a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        description = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
        generated = [entry.get("Name") for entry in description.get("GeneratedBy", [])]
    except (OSError, ValueError, AttributeError):
        generated = []
    if GENERATOR_NAME not in generated:
        raise OutputError(
            f"{out}: holds files that are not a lesionseg phantom dataset; phantoms would replace them: choose an "
            "empty or new folder"
        )


def make_dataset(out: str | Path, config: SynthConfig) -> list[SubjectSummary]:
    """Write a BIDS dataset of ``config.subjects`` phantoms to ``out``.

    Returns:
        One :class:`SubjectSummary` per subject.
    """
    out = Path(out)
    check_phantom_target(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(
        out / "dataset_description.json",
        {"Name": "lesionseg synthetic spinal-cord phantoms", "BIDSVersion": "1.9.0", "DatasetType": "raw",
         "GeneratedBy": [{"Name": GENERATOR_NAME, "Description": f"seed={config.seed}"}]},
    )
    _write_json(
        out / "derivatives" / "labels" / "dataset_description.json",
        {"Name": "lesionseg phantom labels", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
         "GeneratedBy": [{"Name": "lesionseg synth"}]},
    )
    summaries = [make_subject(out, index, config) for index in range(config.subjects)]
    rows = ["participant_id\tsynthetic_lesions"] + [f"{s.subject}\t{s.lesions}" for s in summaries]
    atomic_write_text(out / "participants.tsv", "\n".join(rows) + "\n")
    return summaries
