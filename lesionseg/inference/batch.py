"""Batch inference over files, folders and BIDS datasets: one bad file never stops the batch."""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lesionseg.constants import LESION_OUTPUT_SUFFIX, LESION_SOFT_OUTPUT_SUFFIX
from lesionseg.errors import LesionsegError
from lesionseg.inference.predictor import Predictor
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.nifti import is_nifti, strip_nifti_extension
from lesionseg.transforms.postprocessing import count_components

logger = logging.getLogger(__name__)

#: Folders never searched for inputs: BIDS derivatives hold labels and outputs, not scans.
SKIPPED_FOLDERS = ("derivatives",)


@dataclass(frozen=True)
class InputFile:
    """An input scan and the sub-folder (relative to its search root) its outputs go to."""

    path: Path
    relative_folder: Path


@dataclass(frozen=True)
class InferenceRecord:
    """The outcome for one input."""

    input: str
    status: str  # "ok" or "failed"
    output: str
    lesions: int
    lesion_volume_mm3: float
    seconds: float
    error: str


def collect_inputs(inputs: Sequence[str | Path]) -> tuple[list[InputFile], list[InferenceRecord]]:
    """Expand files and folders (recursively, skipping ``derivatives`` and hidden files) into scans.

    Returns:
        The scans found, and a failed record for each argument that is neither a NIfTI file nor a folder.
    """
    found: list[InputFile] = []
    failed: list[InferenceRecord] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path)
                if any(part in SKIPPED_FOLDERS or part.startswith(".") for part in relative.parts):
                    continue
                if is_nifti(candidate) and candidate.is_file():
                    found.append(InputFile(candidate, relative.parent))
        elif path.is_file() and is_nifti(path):
            found.append(InputFile(path, Path(".")))
        else:
            cause = "no such file or folder" if not path.exists() else "not a NIfTI file (.nii or .nii.gz)"
            failed.append(InferenceRecord(str(path), "failed", "", 0, 0.0, 0.0, f"{path}: {cause}"))
    return found, failed


def output_path(out_dir: Path, item: InputFile, suffix: str = LESION_OUTPUT_SUFFIX) -> Path:
    """``OUT/<relative folder>/<stem>_<suffix>.nii.gz``."""
    return out_dir / item.relative_folder / f"{strip_nifti_extension(item.path)}_{suffix}.nii.gz"


def run_batch(
    predictor: Predictor,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    soft: bool = False,
    on_record: Callable[[InferenceRecord], None] | None = None,
) -> list[InferenceRecord]:
    """Predict every scan under ``inputs`` into ``out_dir`` and write ``out_dir/summary.csv``.

    A file that fails (bad input, write error) is recorded with its one-line error and the batch goes on.
    """
    out_dir = Path(out_dir)
    items, records = collect_inputs(inputs)
    if not items and not records:
        records.append(InferenceRecord(", ".join(map(str, inputs)), "failed", "", 0, 0.0, 0.0, "no NIfTI files found"))
    for record in records:
        logger.error("%s", record.error)
        if on_record:
            on_record(record)
    for item in items:
        started = time.perf_counter()
        try:
            prediction = predictor.predict(item.path)
            destination = output_path(out_dir, item)
            prediction.save(destination)
            if soft:
                prediction.save(output_path(out_dir, item, LESION_SOFT_OUTPUT_SUFFIX), soft=True)
            record = InferenceRecord(
                input=str(item.path),
                status="ok",
                output=str(destination),
                lesions=count_components(prediction.mask),
                lesion_volume_mm3=round(float(prediction.mask.sum()) * prediction.voxel_volume_mm3, 2),
                seconds=round(time.perf_counter() - started, 3),
                error="",
            )
        except LesionsegError as error:
            record = InferenceRecord(str(item.path), "failed", "", 0, 0.0, round(time.perf_counter() - started, 3), str(error))
            logger.error("%s", error)
        records.append(record)
        if on_record:
            on_record(record)
    write_summary(records, out_dir / "summary.csv")
    return records


def write_summary(records: Sequence[InferenceRecord], path: Path) -> Path:
    """Write the records as CSV (atomically)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(InferenceRecord.__dataclass_fields__))
    writer.writeheader()
    for record in records:
        writer.writerow(asdict(record))
    return atomic_write_text(path, buffer.getvalue())
