"""Batch inference over NIfTI files, folders, BIDS datasets and DICOM series: one bad file never stops it.

For each input ``<stem>`` the batch writes into ``OUT/<relative folder>/``:

- ``<stem>_lesionseg.nii.gz`` (and ``<stem>_seg.nii.gz``, the cord, with a cascade), on the input's grid;
- ``<stem>_lesionseg-soft.nii.gz`` with ``soft``; ``<stem>_lesionseg-uncertainty.nii.gz`` with ``uncertainty``
  (variance over ensemble members and TTA flips);
- ``<stem>_lesions.csv`` and ``<stem>_lesions.json``: the lesion table and totals;
- ``<stem>_seg.dcm``: a DICOM SEG (lesion, and cord with a cascade) when the input is a DICOM series and
  ``dicom_seg`` is set;

- ``<stem>_lesionseg-record.json``: the scan's completion record (:mod:`lesionseg.io.run_folder`), written
  before its outputs (``started``) and after them (``done``);

and ``OUT/summary.csv`` at the end (ok / failed / skipped with reasons; rows of earlier runs into the same folder
for other inputs are kept). Output names are keyed by identity: a folder's sub-folders are mirrored under ``OUT``
(under the folder's own name when several folders are given), and a DICOM series' ``<stem>`` carries a hash of its
patient, study and series identifiers. Inputs whose outputs would still share a name (``a.nii`` beside
``a.nii.gz``, two folders of one name) fail, all of them, before anything is written; a file in ``OUT`` that the
run did not write for that input (an input, a manual mask, another input's output) is never replaced. With ``shard=(i, n)`` (``--shard i/n``,
or each rank under ``torchrun``) a process takes every n-th input from the i-th, writes
``OUT/summary.shard-i-of-n.csv``, and the shard that finishes last merges all of them into ``OUT/summary.csv``.
Every file is written atomically;
``skip_existing`` skips inputs whose completion record says done (same input, unchanged, every output present), so
a killed batch resumes where it stopped and redoes a scan left half-written. One run writes into ``OUT`` at a
time (a lock). The next input is loaded in a background thread while the current one is predicted.
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
from lesionseg.errors import InputError, LesionsegError, OutputError
from lesionseg.inference.cascade import CascadePrediction, CascadePredictor
from lesionseg.inference.lesions import LesionTable, lesion_table
from lesionseg.inference.predictor import Prediction, Predictor
from lesionseg.io.atomic import atomic_write_text, remove_stale_temporaries
from lesionseg.io.run_folder import (
    RECORD_SUFFIX,
    ScanRecord,
    check_replaceable,
    file_fingerprint,
    is_done,
    output_lock,
    read_record,
    record_path,
    write_record,
)
from lesionseg.io.checkpoint import CONTRAST_STAGE_PREFIX
from lesionseg.io.dicom import DicomSeries, find_series, is_dicom_folder, load_series, select_series, write_dicom_seg
from lesionseg.io.nifti import MAX_VOXELS, LoadedImage, is_nifti, load_image, strip_nifti_extension
from lesionseg.io.validate import check_same_grid

logger = logging.getLogger(__name__)

#: Folders never searched for inputs: BIDS derivatives hold labels and outputs, not scans.
SKIPPED_FOLDERS = ("derivatives",)
UNCERTAINTY_SUFFIX = "lesionseg-uncertainty"
#: Names of the masks inference writes, never taken as inputs when found in the output folder.
OUTPUT_SUFFIXES = tuple(
    f"_{s}" for s in (LESION_OUTPUT_SUFFIX, LESION_SOFT_OUTPUT_SUFFIX, UNCERTAINTY_SUFFIX, CORD_OUTPUT_SUFFIX, RECORD_SUFFIX)
)


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

    @property
    def identity(self) -> str:
        """What the input is, for its completion record: the resolved file, or the series' identifier hash."""
        return f"dicom:{self.series.identity or self.series.uid}" if self.series is not None else f"nifti:{self.path.resolve()}"

    def fingerprint(self) -> dict[str, int]:
        """Sizes and modification times of the input's files (a changed input is redone)."""
        return file_fingerprint(list(self.series.files) if self.series is not None else [self.path])


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
    #: take images whose header has no orientation (qform and sform codes 0) as RAS, with a warning
    accept_no_orientation: bool = False
    #: outputs a result hook writes, as (suffix, extension) pairs, e.g. ``(("report", ".html"),)``: announced in
    #: the completion record and checked like the batch's own
    extra_outputs: tuple[tuple[str, str], ...] = ()


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

    A folder's sub-folders are mirrored in ``relative_folder``; when several folders are given, each one's
    scans go under the folder's own name, so ``siteA/sub-01`` and ``siteB/sub-01`` never share outputs. Inputs
    whose outputs would still share names fail (see :func:`drop_colliding`).

    Returns:
        The scans found, and a failed record for each argument that yields nothing usable.
    """
    options = options or BatchOptions()
    found: list[InputFile] = []
    failed: list[InferenceRecord] = []
    seen: set[Path] = set()
    several_folders = sum(1 for raw in inputs if Path(raw).is_dir()) > 1
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            prefix = Path(path.resolve().name) if several_folders else Path(".")
            _collect_folder(path, prefix, options, out_dir, found, failed, seen)
        elif path.is_file() and is_nifti(path):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(InputFile(path, Path(".")))
        else:
            cause = "no such file or folder" if not path.exists() else "not a NIfTI file (.nii or .nii.gz) or a DICOM folder"
            failed.append(InferenceRecord(str(path), "failed", "", 0, 0.0, 0.0, f"{path}: {cause}"))
    return found, failed


def _collect_folder(
    root: Path,
    prefix: Path,
    options: BatchOptions,
    out_dir: Path | None,
    found: list[InputFile],
    failed: list[InferenceRecord],
    seen: set[Path],
) -> None:
    """Add the NIfTI files and DICOM series under ``root`` (see :func:`collect_inputs`)."""
    out_resolved = out_dir.resolve() if out_dir is not None else None
    # symlinked folders are not followed: a link back up the tree would list files twice (or forever)
    for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        relative = folder.relative_to(root)
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
                found.append(InputFile(candidate, prefix / relative))
        if _has_other_files(folder) and is_dicom_folder(folder):
            try:
                chosen = select_series(find_series(folder), uid=options.series_uid, description=options.series_description)
            except InputError as error:
                failed.append(InferenceRecord(str(folder), "failed", "", 0, 0.0, 0.0, str(error)))
                continue
            found.extend(InputFile(folder, prefix / relative, series) for series in chosen)


def planned_outputs(item: InputFile, out_dir: Path, options: BatchOptions, *, cascade: bool) -> list[Path]:
    """Every file the batch may write for ``item`` (its completion record last)."""
    names = [(LESION_OUTPUT_SUFFIX, ".nii.gz"), ("lesions", ".csv"), ("lesions", ".json")]
    if cascade:
        names.append((CORD_OUTPUT_SUFFIX, ".nii.gz"))
    if options.soft:
        names.append((LESION_SOFT_OUTPUT_SUFFIX, ".nii.gz"))
    if options.uncertainty:
        names.append((UNCERTAINTY_SUFFIX, ".nii.gz"))
    if options.dicom_seg and item.series is not None:
        names.append((CORD_OUTPUT_SUFFIX, ".dcm"))
    names.extend(options.extra_outputs)
    return [output_path(out_dir, item, suffix, extension) for suffix, extension in names] + [
        record_path(out_dir / item.relative_folder, item.stem)
    ]


def drop_colliding(
    items: Sequence[InputFile], out_dir: Path, options: BatchOptions, *, cascade: bool
) -> tuple[list[InputFile], list[InferenceRecord]]:
    """Split off the inputs whose outputs would share a file with another input's outputs, or land on an input
    (names compared case-insensitively, as on macOS and Windows disks): all of them fail, before anything is
    written.

    Returns:
        The inputs that can run, and a failed record for each one that cannot.
    """
    owners: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        for destination in planned_outputs(item, out_dir, options, cascade=cascade):
            owners.setdefault(str(destination.absolute()).lower(), []).append(index)
    inputs = {str(item.path.absolute()).lower(): index for index, item in enumerate(items) if item.series is None}
    clashes: dict[int, set[int]] = {}
    for key, indices in owners.items():
        if len(set(indices)) > 1:
            for index in indices:
                clashes.setdefault(index, set()).update(set(indices) - {index})
        if key in inputs:
            clashes.setdefault(indices[0], set()).add(inputs[key])
    failed = []
    for index, others in sorted(clashes.items()):
        item = items[index]
        names = ", ".join(items[other].label for other in sorted(others))
        where = output_path(out_dir, item, "*", "")
        failed.append(InferenceRecord(
            item.label, "failed", "", 0, 0.0, 0.0,
            f"{item.label}: its outputs ({where}) would have the same names as those of (or would replace) {names}; "
            "nothing written for either: rename one or run them into separate --out folders",
        ))
    return [item for index, item in enumerate(items) if index not in clashes], failed


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
    rows = [row for part in parts for row in _read_summary(part)]
    mine = {row.get("input") for row in rows}
    earlier = [row for row in _read_summary(out_dir / "summary.csv") if row.get("input") not in mine]
    return _write_rows([*earlier, *rows], out_dir / "summary.csv")


def output_path(out_dir: Path, item: InputFile, suffix: str = LESION_OUTPUT_SUFFIX, extension: str = ".nii.gz") -> Path:
    """``OUT/<relative folder>/<stem>_<suffix><extension>``."""
    return out_dir / item.relative_folder / f"{item.stem}_{suffix}{extension}"


def load_input(item: InputFile, max_voxels: int = MAX_VOXELS, *, accept_no_orientation: bool = False) -> LoadedImage:
    """Load and validate one input (NIfTI file or DICOM series)."""
    if item.series is not None:
        return load_series(item.series)
    return load_image(item.path, max_voxels=max_voxels, accept_no_orientation=accept_no_orientation)


def _prefetched(items: Sequence[InputFile], options: BatchOptions) -> Iterator[tuple[InputFile, Future]]:
    """Yield each item with a future of its loaded image; the next one loads while the current one runs."""
    def load(item: InputFile) -> LoadedImage:
        return load_input(item, options.max_voxels, accept_no_orientation=options.accept_no_orientation)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lesionseg-load") as pool:
        pending = [pool.submit(load, item) for item in items[:1]]
        for index, item in enumerate(items):
            if index + 1 < len(items):
                pending.append(pool.submit(load, items[index + 1]))
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

    A scan that fails (bad input, an output it may not replace, a write error, any unexpected error) is recorded
    with its one-line error and the batch goes on; the summary is always written.

    Raises:
        OutputError: another run is writing into ``out_dir`` (nothing is touched then).
    """
    options = options or BatchOptions(soft=soft)
    if soft and not options.soft:
        options = replace(options, soft=True)
    out_dir = Path(out_dir)
    with output_lock(out_dir, options.shard):
        _check_summary_is_ours(out_dir / shard_file_name("summary.csv", options.shard))
        stale = remove_stale_temporaries(out_dir)
        if stale:
            logger.warning("removed %d unfinished file(s) left in %s by an interrupted run", stale, out_dir)
        records: list[InferenceRecord] = []
        report = _reporter(records, on_record)
        to_run = _plan(predictor, inputs, out_dir, options, report)
        for item, loading in _prefetched(to_run, options):
            report(_run_one(predictor, item, loading, out_dir, options, on_result))
        write_summary(records, out_dir / shard_file_name("summary.csv", options.shard), keep_others=True)
        if options.shard is not None:
            merge_shard_summaries(out_dir, options.shard[1])
    return records


def _reporter(
    records: list[InferenceRecord], on_record: Callable[[InferenceRecord], None] | None
) -> Callable[[InferenceRecord], None]:
    def report(record: InferenceRecord) -> None:
        if record.status == "failed":
            logger.error("%s", record.error)
        records.append(record)
        if on_record:
            on_record(record)

    return report


def _plan(
    predictor: Predictor | CascadePredictor,
    inputs: Sequence[str | Path],
    out_dir: Path,
    options: BatchOptions,
    report: Callable[[InferenceRecord], None],
) -> list[InputFile]:
    """Find the inputs, fail those that cannot run (nothing found, colliding names), report the ones already
    done (``skip_existing``); returns those to run."""
    items, failed = collect_inputs(inputs, options=options, out_dir=out_dir)
    if not items and not failed:
        failed.append(InferenceRecord(", ".join(map(str, inputs)), "failed", "", 0, 0.0, 0.0, "no NIfTI files or DICOM series found"))
    items, colliding = drop_colliding(items, out_dir, options, cascade=isinstance(predictor, CascadePredictor))
    if options.shard is not None:
        mine = {id(item) for item in shard_items(items, options.shard)}
        items = [item for item in items if id(item) in mine]
        if options.shard[0] != 0:  # reported once, by shard 0
            failed, colliding = [], []
    for record in [*failed, *colliding]:
        report(record)
    to_run = []
    for item in items:
        done = _previous_result(item, out_dir, options, cascade=isinstance(predictor, CascadePredictor)) if options.skip_existing else None
        if done is not None:
            report(done)
        else:
            to_run.append(item)
    return to_run


def _previous_result(item: InputFile, out_dir: Path, options: BatchOptions, *, cascade: bool) -> InferenceRecord | None:
    """The skipped row of an input an earlier run completed (with that run's figures), or None to run it."""
    destinations = planned_outputs(item, out_dir, options, cascade=cascade)
    required = [d for d in destinations if UNCERTAINTY_SUFFIX not in d.name]  # written only when there is one
    record = read_record(destinations[-1])
    try:
        fingerprint = item.fingerprint()
    except OSError:
        return None  # the load reports it
    if not is_done(record, item.identity, fingerprint, required):
        return None
    fields = set(InferenceRecord.__dataclass_fields__)
    summary = {key: value for key, value in record.summary.items() if key in fields}
    previous = InferenceRecord(**{**asdict(InferenceRecord(item.label, "", "", 0, 0.0, 0.0, "")), **summary})
    note = "done in an earlier run (its figures)"
    return replace(previous, input=item.label, status="skipped", warning="; ".join(filter(None, [note, previous.warning])))


def _run_one(
    predictor: Predictor | CascadePredictor,
    item: InputFile,
    loading: Future,
    out_dir: Path,
    options: BatchOptions,
    on_result: ResultHook | None,
) -> InferenceRecord:
    """Load and predict one input; any error becomes its failed row (one line) and the batch goes on."""
    started = time.perf_counter()
    try:
        image = loading.result()
        destinations = planned_outputs(item, out_dir, options, cascade=isinstance(predictor, CascadePredictor))
        return _with_completion_record(
            item, destinations, lambda: _segment_and_write(predictor, item, image, out_dir, options, on_result, started)
        )
    except LesionsegError as error:
        message = str(error)
    except Exception as error:  # noqa: BLE001 - one scan's bug or memory error never stops the batch
        logger.debug("traceback of %s", item.label, exc_info=True)
        detail = str(error).strip().splitlines()
        message = f"{item.label}: unexpected {type(error).__name__}{': ' + detail[0] if detail else ''} " \
                  "(run with --debug for the traceback)"
    return InferenceRecord(item.label, "failed", "", 0, 0.0, round(time.perf_counter() - started, 3), message)


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


def _with_completion_record(item: InputFile, destinations: list[Path], segment: Callable[[], InferenceRecord]) -> InferenceRecord:
    """Announce the scan's outputs in its record (refusing files it may not replace), ``segment()`` it, then mark
    the record done with its figures: a scan is done only when all its outputs are."""
    record_file = destinations[-1]
    previous = read_record(record_file)
    check_replaceable(destinations, previous, item.identity)
    earlier = previous.outputs if previous is not None else ()
    announced = ScanRecord(item.identity, item.fingerprint(), tuple(dict.fromkeys([*earlier, *(d.name for d in destinations)])))
    write_record(record_file, announced)
    record = segment()
    write_record(record_file, replace(announced, status="done", summary=asdict(record)))
    return record


def _segment_and_write(
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
    warning = "; ".join(filter(None, [*image.warnings, contrast_warning(predictor, image.contrast)]))
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


def write_summary(records: Sequence[InferenceRecord], path: Path, *, keep_others: bool = False) -> Path:
    """Write the records as CSV (atomically). With ``keep_others``, rows of an earlier summary at ``path`` for
    inputs not in ``records`` are kept first (two runs into one folder give one summary of both)."""
    rows = [asdict(record) for record in records]
    if keep_others:
        mine = {record.input for record in records}
        rows = [row for row in _read_summary(path) if row.get("input") not in mine] + rows
    return _write_rows(rows, path)


def _write_rows(rows: Sequence[dict], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(InferenceRecord.__dataclass_fields__), extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def _check_summary_is_ours(path: Path) -> None:
    """Raises OutputError when ``path`` exists and is not a summary lesionseg wrote (it would be replaced)."""
    if not path.exists():
        return
    try:
        with open(path, encoding="utf-8") as handle:
            header = handle.readline()
    except (OSError, UnicodeDecodeError):
        header = ""
    if not header.startswith("input,status,"):
        raise OutputError(f"{path}: exists and is not a lesionseg summary; not replaced: choose another --out")


def _read_summary(path: Path) -> list[dict[str, str]]:
    """The rows of an earlier summary; none when there is none or it is not one of ours."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return rows if reader.fieldnames and {"input", "status"} <= set(reader.fieldnames) else []
