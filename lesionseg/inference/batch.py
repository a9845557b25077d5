"""Batch inference over NIfTI files, folders, BIDS datasets and DICOM series: one bad file never stops it.

For each input ``<stem>`` the batch writes into ``OUT/<relative folder>/``:

- ``<stem>_lesionseg.nii.gz`` (and ``<stem>_seg.nii.gz``, the cord, with a cascade), on the input's grid;
- ``<stem>_lesionseg-soft.nii.gz`` with ``soft``; ``<stem>_lesionseg-uncertainty.nii.gz`` with ``uncertainty``
  (variance over ensemble members and TTA flips);
- ``<stem>_lesions.csv`` and ``<stem>_lesions.json``: the lesion table and totals;
- ``<stem>_seg.dcm``: a DICOM SEG (lesion, and cord with a cascade) when the input is a DICOM series and
  ``dicom_seg`` is set;

and ``OUT/summary.csv`` at the end (ok / failed / skipped with reasons). With ``shard=(i, n)`` (``--shard i/n``,
or each rank under ``torchrun``) a process takes every n-th input from the i-th, writes
``OUT/summary.shard-i-of-n.csv``, and the shard that finishes last merges all of them into ``OUT/summary.csv``.
Every file is written atomically;
``skip_existing`` skips inputs whose lesion mask exists, so a killed batch resumes where it stopped. The next
input is loaded in a background thread while the current one is predicted.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from lesionseg.constants import CORD_OUTPUT_SUFFIX, LESION_OUTPUT_SUFFIX, LESION_SOFT_OUTPUT_SUFFIX, NIFTI_EXTENSIONS
from lesionseg.errors import InputError, LesionsegError
from lesionseg.inference.cascade import CascadePrediction, CascadePredictor
from lesionseg.inference.lesions import LesionTable, lesion_table
from lesionseg.inference.predictor import Prediction, Predictor
from lesionseg.io.atomic import atomic_write_text, remove_stale_temporaries
from lesionseg.io.checkpoint import CONTRAST_STAGE_PREFIX
from lesionseg.io.dicom import DicomSeries, find_series, is_dicom_folder, load_series, select_series, write_dicom_seg
from lesionseg.io.nifti import MAX_VOXELS, LoadedImage, is_nifti, load_image, strip_nifti_extension
from lesionseg.io.validate import check_same_grid

logger = logging.getLogger(__name__)

#: Folders never searched for inputs: BIDS derivatives hold labels and outputs, not scans.
SKIPPED_FOLDERS = ("derivatives",)
UNCERTAINTY_SUFFIX = "lesionseg-uncertainty"
#: Names of the masks inference writes, never taken as inputs when found in the output folder.
OUTPUT_SUFFIXES = tuple(f"_{s}" for s in (LESION_OUTPUT_SUFFIX, LESION_SOFT_OUTPUT_SUFFIX, UNCERTAINTY_SUFFIX, CORD_OUTPUT_SUFFIX))


@dataclass(frozen=True)
class InputFile:
    """An input scan (a NIfTI file, or a DICOM series in a folder) and where its outputs go."""

    path: Path
    relative_folder: Path
    series: DicomSeries | None = None

    @property
    def stem(self) -> str:
        return self.series.name if self.series is not None else strip_nifti_extension(self.path)

    @property
    def label(self) -> str:
        return f"{self.path} [{self.series.description or self.series.uid}]" if self.series is not None else str(self.path)


@dataclass(frozen=True)
class InferenceRecord:
    """The outcome for one input."""

    input: str
    status: str  # "ok", "failed" or "skipped"
    output: str
    lesions: int
    lesion_volume_mm3: float
    seconds: float
    error: str
    cord_output: str = ""
    warning: str = ""
    #: which lesion model of a cascade ran: ``lesion`` (the general one) or ``lesion-<contrast>``; "" without cascade
    lesion_stage: str = ""
    #: which lesions a cascade kept (minimum size, share inside the cord); "" without cascade
    lesion_rule: str = ""


@dataclass(frozen=True)
class BatchOptions:
    """What to write besides the lesion mask, and which DICOM series to take."""

    soft: bool = False
    uncertainty: bool = False
    dicom_seg: bool = False
    skip_existing: bool = False
    series_uid: str | None = None
    series_description: str | None = None
    #: lesion table: connectivity of lesions, and the suffix of a vertebral level map beside each NIfTI input
    #: (``<stem>_<levels_suffix>.nii.gz``, integer levels, 0 outside), when there is one
    lesion_connectivity: int = 26
    levels_suffix: str | None = None
    max_voxels: int = MAX_VOXELS
    software_version: str = "unknown"
    #: contrast of every input (e.g. ``PSIR``); by default each NIfTI file's BIDS suffix says it
    contrast: str | None = None
    #: (index, count): process only inputs index, index + count, ... of the sorted input list
    shard: tuple[int, int] | None = None


#: Called after each successful input with the loaded image, the lesion and cord predictions, its lesion table
#: and its record (e.g. to write an HTML report).
ResultHook = Callable[[InputFile, LoadedImage, Prediction, "Prediction | None", LesionTable, InferenceRecord], None]


def _has_other_files(folder: Path) -> bool:
    return any(p.is_file() and not p.name.startswith(".") and not p.name.endswith(NIFTI_EXTENSIONS) for p in folder.iterdir())


def collect_inputs(
    inputs: Sequence[str | Path], *, options: BatchOptions | None = None, out_dir: Path | None = None
) -> tuple[list[InputFile], list[InferenceRecord]]:
    """Expand files and folders into scans: NIfTI files (recursively, skipping ``derivatives``, hidden files and
    the output folder) and DICOM series (folders whose files GDCM groups into series).

    Returns:
        The scans found, and a failed record for each argument that yields nothing usable.
    """
    options = options or BatchOptions()
    found: list[InputFile] = []
    failed: list[InferenceRecord] = []
    out_resolved = out_dir.resolve() if out_dir is not None else None
    seen: set[Path] = set()

    def add_dicom(folder: Path, relative: Path) -> None:
        try:
            chosen = select_series(find_series(folder), uid=options.series_uid, description=options.series_description)
        except InputError as error:
            failed.append(InferenceRecord(str(folder), "failed", "", 0, 0.0, 0.0, str(error)))
            return
        found.extend(InputFile(folder, relative, series) for series in chosen)

    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            # symlinked folders are not followed: a link back up the tree would list files twice (or forever)
            folders = [path, *sorted(p for p in path.rglob("*") if p.is_dir() and not p.is_symlink())]
            for folder in folders:
                relative = folder.relative_to(path)
                if any(part in SKIPPED_FOLDERS or part.startswith(".") for part in relative.parts):
                    continue
                in_out = out_resolved is not None and (folder.resolve() == out_resolved or out_resolved in folder.resolve().parents)
                for candidate in sorted(folder.iterdir()):
                    if not (candidate.is_file() and is_nifti(candidate)) or candidate.name.startswith("."):
                        continue
                    if in_out and strip_nifti_extension(candidate).endswith(OUTPUT_SUFFIXES):
                        continue  # our own outputs, from this or an earlier run
                    if options.levels_suffix and strip_nifti_extension(candidate).endswith(f"_{options.levels_suffix}"):
                        continue  # a level map, not a scan
                    if candidate.resolve() not in seen:
                        seen.add(candidate.resolve())
                        found.append(InputFile(candidate, relative))
                if _has_other_files(folder) and is_dicom_folder(folder):
                    add_dicom(folder, relative)
        elif path.is_file() and is_nifti(path):
            found.append(InputFile(path, Path(".")))
        else:
            cause = "no such file or folder" if not path.exists() else "not a NIfTI file (.nii or .nii.gz) or a DICOM folder"
            failed.append(InferenceRecord(str(path), "failed", "", 0, 0.0, 0.0, f"{path}: {cause}"))
    return found, failed


def shard_items(items: Sequence[InputFile], shard: tuple[int, int] | None) -> list[InputFile]:
    """The inputs of one shard: every ``count``-th one from ``index`` (the input list is sorted, so every process
    computes the same split)."""
    if shard is None:
        return list(items)
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: the index must be in 0..{count - 1}")
    return list(items[index::count])


def shard_file_name(name: str, shard: tuple[int, int] | None) -> str:
    """``summary.csv`` -> ``summary.shard-I-of-N.csv`` for shard (I, N); ``name`` itself without a shard."""
    if shard is None:
        return name
    stem, dot, extension = name.partition(".")
    return f"{stem}.shard-{shard[0]}-of-{shard[1]}{dot}{extension}"


def merge_shard_summaries(out_dir: Path, count: int) -> Path | None:
    """Merge ``summary.shard-*-of-COUNT.csv`` into ``summary.csv`` once all ``count`` exist; None before that."""
    parts = [out_dir / shard_file_name("summary.csv", (index, count)) for index in range(count)]
    if not all(part.is_file() for part in parts):
        return None
    rows: list[dict[str, str]] = []
    for part in parts:
        with open(part, newline="", encoding="utf-8") as handle:
            rows.extend(csv.DictReader(handle))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(InferenceRecord.__dataclass_fields__))
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(out_dir / "summary.csv", buffer.getvalue())


def output_path(out_dir: Path, item: InputFile, suffix: str = LESION_OUTPUT_SUFFIX, extension: str = ".nii.gz") -> Path:
    """``OUT/<relative folder>/<stem>_<suffix><extension>``."""
    return out_dir / item.relative_folder / f"{item.stem}_{suffix}{extension}"


def load_input(item: InputFile, max_voxels: int = MAX_VOXELS) -> LoadedImage:
    """Load and validate one input (NIfTI file or DICOM series)."""
    return load_series(item.series) if item.series is not None else load_image(item.path, max_voxels=max_voxels)


def _prefetched(items: Sequence[InputFile], max_voxels: int) -> Iterator[tuple[InputFile, Future]]:
    """Yield each item with a future of its loaded image; the next one loads while the current one runs."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lesionseg-load") as pool:
        pending = [pool.submit(load_input, item, max_voxels) for item in items[:1]]
        for index, item in enumerate(items):
            if index + 1 < len(items):
                pending.append(pool.submit(load_input, items[index + 1], max_voxels))
            yield item, pending[index]


def write_lesion_table(table: LesionTable, item: InputFile, out_dir: Path) -> tuple[Path, Path]:
    """``<stem>_lesions.csv`` (one row per lesion) and ``<stem>_lesions.json`` (rows and totals)."""
    rows = [asdict(row) for row in table.lesions]
    buffer = io.StringIO()
    fields = ["lesion_id", "volume_mm3", "centroid_ras_mm", "centroid_lps_mm", "extent_along_cord_mm", "max_probability", "vertebral_level"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "centroid_ras_mm": " ".join(map(str, row["centroid_ras_mm"])),
                         "centroid_lps_mm": " ".join(map(str, row["centroid_lps_mm"]))})
    csv_path = atomic_write_text(output_path(out_dir, item, "lesions", ".csv"), buffer.getvalue())
    payload = {"input": item.label, "lesions": rows, "count": table.count, "total_volume_mm3": table.total_volume_mm3,
               "connectivity": table.connectivity, "min_volume_mm3": table.min_volume_mm3}
    json_path = atomic_write_text(output_path(out_dir, item, "lesions", ".json"), json.dumps(payload, indent=2) + "\n")
    return csv_path, json_path


def run_batch(
    predictor: Predictor | CascadePredictor,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    soft: bool = False,
    options: BatchOptions | None = None,
    on_record: Callable[[InferenceRecord], None] | None = None,
    on_result: ResultHook | None = None,
) -> list[InferenceRecord]:
    """Predict every scan under ``inputs`` into ``out_dir`` and write ``out_dir/summary.csv``.

    A file that fails (bad input, write error) is recorded with its one-line error and the batch goes on.
    """
    options = options or BatchOptions(soft=soft)
    if soft and not options.soft:
        options = BatchOptions(**{**asdict(options), "soft": True})
    out_dir = Path(out_dir)
    stale = remove_stale_temporaries(out_dir)
    if stale:
        logger.warning("removed %d unfinished file(s) left in %s by an interrupted run", stale, out_dir)
    items, records = collect_inputs(inputs, options=options, out_dir=out_dir)
    if not items and not records:
        records.append(InferenceRecord(", ".join(map(str, inputs)), "failed", "", 0, 0.0, 0.0, "no NIfTI files or DICOM series found"))
    if options.shard is not None:
        items = shard_items(items, options.shard)
        if options.shard[0] != 0:
            records = []  # arguments that yield nothing are reported once, by shard 0
    for record in records:
        logger.error("%s", record.error)
        if on_record:
            on_record(record)

    to_run = []
    for item in items:
        if options.skip_existing and output_path(out_dir, item).is_file():
            record = InferenceRecord(item.label, "skipped", str(output_path(out_dir, item)), 0, 0.0, 0.0, "", warning="output exists")
            records.append(record)
            if on_record:
                on_record(record)
        else:
            to_run.append(item)

    for item, loading in _prefetched(to_run, options.max_voxels):
        started = time.perf_counter()
        try:
            image = loading.result()
            record = _predict_one(predictor, item, image, out_dir, options, on_result, started)
        except LesionsegError as error:
            record = InferenceRecord(item.label, "failed", "", 0, 0.0, round(time.perf_counter() - started, 3), str(error))
            logger.error("%s", error)
        records.append(record)
        if on_record:
            on_record(record)
    write_summary(records, out_dir / shard_file_name("summary.csv", options.shard))
    if options.shard is not None:
        merge_shard_summaries(out_dir, options.shard[1])
    return records


def contrast_warning(predictor: Predictor | CascadePredictor, contrast: str | None) -> str:
    """A warning when the input's contrast is not one the lesion model was trained on, e.g. a T2w model on a PSIR
    scan; "" when they agree, either is unknown, or the model is contrast-agnostic (random intensities)."""
    lesion = predictor.lesion_for(contrast) if isinstance(predictor, CascadePredictor) else predictor
    trained = lesion.metadata.get("contrasts")
    if not trained or contrast is None or contrast in trained or lesion.metadata.get("contrast_agnostic"):
        return ""
    return (
        f"the lesion model was trained on {'/'.join(trained)}, this is {contrast}: expect poor results unless "
        "it is fine-tuned on this contrast (lesionseg train --init-from)"
    )


def _predict_one(
    predictor: Predictor | CascadePredictor,
    item: InputFile,
    image: LoadedImage,
    out_dir: Path,
    options: BatchOptions,
    on_result: ResultHook | None,
    started: float,
) -> InferenceRecord:
    if options.contrast is not None:
        image = replace(image, contrast=options.contrast)
    result = predictor.predict_loaded(image)
    cord: Prediction | None = None
    warning = contrast_warning(predictor, image.contrast)
    if warning:
        logger.warning("%s: %s", item.label, warning)
    lesion_stage = lesion_rule = ""
    if isinstance(result, CascadePrediction):
        lesion_rule = result.lesion_rule
        cord, prediction = result.cord, result.lesion
        warning = "; ".join(filter(None, [warning, result.warning]))
        lesion_stage = f"{CONTRAST_STAGE_PREFIX}{result.lesion_contrast}" if result.lesion_contrast else "lesion"
    else:
        prediction = result
    destination = prediction.save(output_path(out_dir, item))
    cord_output = str(cord.save(output_path(out_dir, item, CORD_OUTPUT_SUFFIX))) if cord is not None else ""
    if options.soft:
        prediction.save(output_path(out_dir, item, LESION_SOFT_OUTPUT_SUFFIX), soft=True)
    if options.uncertainty:
        if prediction.variance is None:
            warning = "; ".join(filter(None, [warning, "no uncertainty map: it needs --tta or several models"]))
        else:
            prediction.save(output_path(out_dir, item, UNCERTAINTY_SUFFIX), variance=True)
    table = lesion_table(
        prediction.mask,
        image.affine,
        probabilities=prediction.probabilities,
        cord=cord.mask if cord is not None else None,
        levels=_level_map(item, image, options),
        connectivity=options.lesion_connectivity,
    )
    write_lesion_table(table, item, out_dir)
    if options.dicom_seg:
        if item.series is None:
            warning = "; ".join(filter(None, [warning, "no DICOM SEG: the input is not a DICOM series"]))
        else:
            masks = {"lesion": image.geometry.to_native(prediction.mask)}
            if cord is not None:
                masks["cord"] = image.geometry.to_native(cord.mask)
            write_dicom_seg(item.series, masks, output_path(out_dir, item, CORD_OUTPUT_SUFFIX, ".dcm"),
                            software_version=options.software_version)
    record = InferenceRecord(
        input=item.label,
        status="ok",
        output=str(destination),
        lesions=table.count,
        lesion_volume_mm3=round(table.total_volume_mm3, 2),
        seconds=round(time.perf_counter() - started, 3),
        error="",
        cord_output=cord_output,
        warning=warning,
        lesion_stage=lesion_stage,
        lesion_rule=lesion_rule,
    )
    if on_result is not None:
        on_result(item, image, prediction, cord, table, record)
    return record


def _level_map(item: InputFile, image: LoadedImage, options: BatchOptions) -> np.ndarray | None:
    """The vertebral level map beside a NIfTI input (canonical grid, integers), or None."""
    if options.levels_suffix is None or item.series is not None:
        return None
    for extension in NIFTI_EXTENSIONS:
        path = item.path.with_name(f"{item.stem}_{options.levels_suffix}{extension}")
        if path.is_file():
            levels = load_image(path)
            check_same_grid(image.path, image.geometry.shape, image.geometry.affine, path, levels.geometry.shape, levels.geometry.affine)
            return np.rint(levels.data).astype(np.int32)
    return None


def write_summary(records: Sequence[InferenceRecord], path: Path) -> Path:
    """Write the records as CSV (atomically)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(InferenceRecord.__dataclass_fields__))
    writer.writeheader()
    for record in records:
        writer.writerow(asdict(record))
    return atomic_write_text(path, buffer.getvalue())
