"""Batch inference over NIfTI files, folders, BIDS datasets and DICOM series: the loop, and nothing else.

Inputs are found by :mod:`lesionseg.io.inputs` (which also names their outputs), segmented by a
:class:`~lesionseg.inference.segmenter.Segmenter`, and written by the writers of :mod:`lesionseg.outputs`
(lesion mask; cord mask with a cascade; soft and uncertainty maps, lesion table, DICOM SEG, and any extra writer
such as the HTML report). Each scan's outputs are announced in its completion record before they are written
and confirmed after (:mod:`lesionseg.io.run_folder`), so a scan is done only when all its outputs are;
``OUT/summary.csv`` is written at the end, whatever happened. With ``shard=(i, n)`` (``--shard i/n``, or each rank
under ``torchrun``) a process takes every n-th input from the i-th and writes ``OUT/summary.shard-i-of-n.csv``;
the shard that finishes last merges them.

Inputs whose outputs would share a name (``a.nii`` beside ``a.nii.gz``, two folders of one name) fail, all of them,
before anything is written; a file in ``OUT`` that the run did not write for that input is never replaced; one run
writes into ``OUT`` at a time. ``skip_existing`` skips scans whose record says done (same unchanged input, every
output present), reporting the figures that run recorded. Any error in one scan is its failed row, with one line;
the batch goes on. The next input is loaded in a background thread while the current one is segmented.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from lesionseg.analysis.cord_qc import cord_coverage, coverage_warning, median_csa_mm2
from lesionseg.analysis.levels import LEVEL_FILE_KINDS, level_map_from
from lesionseg.constants import CORD_OUTPUT_SUFFIX, NIFTI_EXTENSIONS, UNCERTAINTY_OUTPUT_SUFFIX
from lesionseg.errors import ConfigError, InputError, LesionsegError, unexpected
from lesionseg.inference.lesions import LesionTable, lesion_table
from lesionseg.inference.predictor import Predictor
from lesionseg.inference.segmenter import Segmentation, Segmenter
from lesionseg.io.atomic import remove_stale_temporaries
from lesionseg.io.dicom import load_series
from lesionseg.io.inputs import InputFile, InputSelection, collect_inputs, output_path, shard_items
from lesionseg.io.nifti import MAX_VOXELS, LoadedImage, canonical_contrast, load_image
from lesionseg.io.run_folder import (
    ScanRecord,
    check_replaceable,
    is_done,
    output_lock,
    read_record,
    record_path,
    write_record,
)
from lesionseg.io.validate import check_same_grid
from lesionseg.outputs.base import ScanResult, Writer
from lesionseg.outputs.bids_derivative import BidsDerivative, BidsSidecarWriter, model_summaries
from lesionseg.outputs.dicom_seg import DicomSegWriter
from lesionseg.outputs.lesion_table import LesionTableWriter
from lesionseg.outputs.masks import CordMaskWriter, LesionMaskWriter, SoftMapWriter, UncertaintyWriter
from lesionseg.outputs.summary import (
    SUMMARY_FILE,
    InferenceRecord,
    check_summary_is_ours,
    merge_shard_summaries,
    shard_file_name,
    write_summary,
)

logger = logging.getLogger(__name__)

#: the lesion table's ``level_source`` for levels counted from the disc model's discs and named from the C2 model's C2
AUTOMATIC_LEVELS = "automatic: discs found by the disc model, named from C2 (the disc below it is C2-C3)"


@dataclass(frozen=True)
class BatchOptions:
    """What to write besides the lesion mask, and which inputs to take."""

    soft: bool = False
    uncertainty: bool = False
    dicom_seg: bool = False
    skip_existing: bool = False
    series_uid: str | None = None
    series_description: str | None = None
    #: lesion table: connectivity of lesions, and the suffix of a vertebral level file beside each NIfTI input
    #: (``<stem>_<levels_suffix>.nii.gz``), when there is one: a level map (integer levels, 0 outside), or point
    #: labels of one of Spinal Cord Toolbox's conventions (``levels_kind``, one of
    #: :data:`~lesionseg.analysis.levels.LEVEL_FILE_KINDS`)
    lesion_connectivity: int = 26
    levels_suffix: str | None = None
    levels_kind: str = "map"
    max_voxels: int = MAX_VOXELS
    software_version: str = "unknown"
    #: contrast of every input (e.g. ``PSIR``); by default each NIfTI file's BIDS suffix says it
    contrast: str | None = None
    #: (index, count): process only inputs index, index + count, ... of the sorted input list
    shard: tuple[int, int] | None = None
    #: take images whose header has no orientation (qform and sform codes 0) as RAS, with a warning
    accept_no_orientation: bool = False
    #: write OUT as a BIDS derivative dataset (:mod:`lesionseg.outputs.bids_derivative`); inputs need BIDS names
    bids_derivatives: bool = False
    #: the model's name, for the derivative dataset's description and sidecars
    model_name: str = ""

    def __post_init__(self) -> None:
        if self.levels_kind not in LEVEL_FILE_KINDS:
            raise ConfigError(f"levels_kind {self.levels_kind!r}: expected one of {', '.join(LEVEL_FILE_KINDS)}")

    @property
    def selection(self) -> InputSelection:
        return InputSelection(self.series_uid, self.series_description, self.levels_suffix, self.bids_derivatives)

    def writers(self) -> list[Writer]:
        """The writers these options ask for, the lesion mask and table always."""
        writers: list[Writer] = [LesionMaskWriter(), CordMaskWriter(), LesionTableWriter()]
        writers += [SoftMapWriter()] if self.soft else []
        writers += [UncertaintyWriter()] if self.uncertainty else []
        writers += [DicomSegWriter(self.software_version)] if self.dicom_seg else []
        return writers


def planned_outputs(item: InputFile, out_dir: Path, writers: Sequence[Writer], *, segments_cord: bool) -> list[Path]:
    """Every file the batch may write for ``item``, its completion record last."""
    names = [name for writer in writers for name in writer.names(item, segments_cord)]
    return [output_path(out_dir, item, suffix, extension) for suffix, extension in names] + [
        record_path(out_dir / item.relative_folder, item.stem)
    ]


def run_batch(
    segmenter: Segmenter,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    soft: bool = False,
    options: BatchOptions | None = None,
    on_record: Callable[[InferenceRecord], None] | None = None,
    writers: Sequence[Writer] = (),
) -> list[InferenceRecord]:
    """Segment every scan under ``inputs`` into ``out_dir`` and write ``out_dir/summary.csv``.

    ``writers`` are written after the options' own (e.g. :class:`lesionseg.reporting.inference_html.ReportWriter`).

    Raises:
        OutputError: another run is writing into ``out_dir``, or its ``summary.csv`` is not lesionseg's (nothing is
            touched then).
    """
    options = options or BatchOptions(soft=soft)
    options = replace(options, soft=True) if soft else options
    out_dir = Path(out_dir)
    derivative = BidsDerivative.for_inputs(inputs, out_dir, software_version=options.software_version,
                                           model_name=options.model_name) if options.bids_derivatives else None
    if derivative is not None:
        writers = [BidsSidecarWriter(derivative, soft=options.soft, models=model_summaries(segmenter.stages)), *writers]
    batch = _Batch(segmenter, out_dir, options, [*options.writers(), *writers])
    with output_lock(out_dir, options.shard):
        check_summary_is_ours(out_dir / shard_file_name(SUMMARY_FILE, options.shard))
        if remove_stale_temporaries(out_dir):
            logger.warning("removed unfinished file(s) left in %s by an interrupted run", out_dir)
        if derivative is not None:
            derivative.write_dataset_files()
        records: list[InferenceRecord] = []

        def report(record: InferenceRecord) -> None:
            if record.status == "failed":  # debug only: the caller reports records (the CLI prints each once)
                logger.debug("%s", record.error)
            records.append(record)
            if on_record:
                on_record(record)

        for item, loading in _prefetched(batch.plan(inputs, report), options):
            report(batch.run_one(item, loading))
        write_summary(records, out_dir / shard_file_name(SUMMARY_FILE, options.shard), keep_others=True)
        if options.shard is not None:
            merge_shard_summaries(out_dir, options.shard[1])
    return records


@dataclass
class _Batch:
    """One batch's segmenter, output folder, options and writers."""

    segmenter: Segmenter
    out_dir: Path
    options: BatchOptions
    writers: list[Writer]

    def destinations(self, item: InputFile) -> list[Path]:
        return planned_outputs(item, self.out_dir, self.writers, segments_cord=self.segmenter.segments_cord)

    def plan(self, inputs: Sequence[str | Path], report: Callable[[InferenceRecord], None]) -> list[InputFile]:
        """Find the inputs, report those that cannot run (nothing found, colliding names) and those already done
        (``skip_existing``); returns the ones to run."""
        items, unusable = collect_inputs(inputs, selection=self.options.selection, out_dir=self.out_dir)
        failed = [InferenceRecord.failed(argument, error) for argument, error in unusable]
        if not items and not failed:
            failed.append(InferenceRecord.failed(", ".join(map(str, inputs)), "no NIfTI files or DICOM series found"))
        items, colliding = drop_colliding(items, self.destinations)
        if self.options.shard is not None:
            items = shard_items(items, self.options.shard)
            if self.options.shard[0] != 0:  # reported once, by shard 0
                failed, colliding = [], []
        for record in [*failed, *colliding]:
            report(record)
        to_run = []
        for item in items:
            done = self.previous_result(item) if self.options.skip_existing else None
            if done is not None:
                report(done)
            else:
                to_run.append(item)
        return to_run

    def previous_result(self, item: InputFile) -> InferenceRecord | None:
        """The skipped row of an input an earlier run completed (with that run's figures), or None to run it."""
        destinations = self.destinations(item)
        required = [d for d in destinations if UNCERTAINTY_OUTPUT_SUFFIX not in d.name]  # written only when there is one
        try:
            fingerprint = item.fingerprint()
        except OSError:
            return None  # the load reports it
        record = read_record(destinations[-1])
        if record is None or not is_done(record, item.identity, fingerprint, required):
            return None
        previous = InferenceRecord.from_row(record.summary)
        note = "; ".join(filter(None, ["done in an earlier run (its figures)", previous.warning]))
        return replace(previous, input=item.label, status="skipped", warning=note)

    def run_one(self, item: InputFile, loading: Future) -> InferenceRecord:
        """Load, segment and write one input; any error becomes its failed row (one line)."""
        started = time.perf_counter()
        try:
            image = loading.result()
            return self.with_completion_record(item, lambda: self.segment_and_write(item, image, started))
        except LesionsegError as error:
            message = str(error)
        except Exception as error:  # noqa: BLE001 - one scan's bug or memory error never stops the batch
            logger.debug("traceback of %s", item.label, exc_info=True)
            message = f"{item.label}: {unexpected(error)}"
        return InferenceRecord.failed(item.label, message, time.perf_counter() - started)

    def with_completion_record(self, item: InputFile, segment: Callable[[], InferenceRecord]) -> InferenceRecord:
        """Announce the scan's outputs in its record (refusing files it may not replace), ``segment()`` it, then
        mark the record done with its figures: a scan is done only when all its outputs are."""
        destinations = self.destinations(item)
        previous = read_record(destinations[-1])
        check_replaceable(destinations, previous, item.identity)
        earlier = previous.outputs if previous is not None else ()
        names = tuple(dict.fromkeys([*earlier, *(d.name for d in destinations)]))
        announced = ScanRecord(item.identity, item.fingerprint(), names)
        write_record(destinations[-1], announced)
        record = segment()
        write_record(destinations[-1], replace(announced, status="done", summary=asdict(record)))
        return record

    def segment_and_write(self, item: InputFile, image: LoadedImage, started: float) -> InferenceRecord:
        if self.options.contrast is not None:
            image = replace(image, contrast=canonical_contrast(self.options.contrast))
        segmentation = self.segmenter.segment(image)
        coverage = cord_coverage(segmentation.cord.mask) if segmentation.cord is not None else None
        warnings = [*image.warnings, contrast_warning(self.segmenter, image.contrast), segmentation.warning,
                    coverage_warning(coverage, image.spacing_mm) if coverage is not None else ""]
        skipped = [writer.skip_reason(item, segmentation) for writer in self.writers]
        warnings += skipped
        warning = "; ".join(filter(None, warnings))
        if warning:  # in the record; the CLI prints it once, at the end
            logger.debug("%s: %s", item.label, warning)
        table = self.lesion_table(item, image, segmentation)
        record = self.record(item, segmentation, table.count, table.total_volume_mm3, warning, started)
        if coverage is not None:
            record = replace(record, cord_slices=coverage.with_cord, axial_slices=coverage.slices,
                             cord_csa_mm2=median_csa_mm2(segmentation.cord.mask, image.spacing_mm))
        scan = ScanResult(item, image, segmentation, table, record)
        for writer, reason in zip(self.writers, skipped, strict=True):
            if not reason:
                writer.write(scan, self.out_dir)
        return replace(record, seconds=round(time.perf_counter() - started, 3))

    def lesion_table(self, item: InputFile, image: LoadedImage, segmentation: Segmentation) -> LesionTable:
        """The scan's lesion table, with the vertebral levels of the user's level map, else the automatic ones."""
        lesion, cord = segmentation.lesion, segmentation.cord
        levels, source = _level_map(item, image, self.options)
        if levels is None and segmentation.levels is not None:
            levels, source = segmentation.levels, AUTOMATIC_LEVELS
        return lesion_table(lesion.mask, image.affine, probabilities=lesion.probabilities,
                            cord=cord.mask if cord is not None else None, levels=levels,
                            connectivity=self.options.lesion_connectivity, level_source=source)

    def record(self, item: InputFile, segmentation: Segmentation, count: int, volume: float, warning: str,
               started: float) -> InferenceRecord:
        cord = str(output_path(self.out_dir, item, CORD_OUTPUT_SUFFIX)) if segmentation.cord is not None else ""
        return InferenceRecord(
            input=item.label, status="ok", output=str(output_path(self.out_dir, item)), lesions=count,
            lesion_volume_mm3=round(volume, 2), seconds=round(time.perf_counter() - started, 3), error="",
            cord_output=cord, warning=warning, lesion_stage=segmentation.lesion_stage,
            lesion_rule=segmentation.lesion_rule, cord_stage=segmentation.cord_stage,
        )


def drop_colliding(
    items: Sequence[InputFile], destinations: Callable[[InputFile], list[Path]]
) -> tuple[list[InputFile], list[InferenceRecord]]:
    """Split off the inputs whose outputs would share a file with another input's outputs, or land on an input
    (names compared case-insensitively, as on macOS and Windows disks): all of them fail, before anything is
    written.

    Returns:
        The inputs that can run, and a failed record for each one that cannot.
    """
    owners: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        for destination in destinations(item):
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
        failed.append(InferenceRecord.failed(
            item.label,
            f"{item.label}: its outputs ({destinations(item)[0].parent / item.stem}_*) would have the same names as "
            f"those of (or would replace) {names}; nothing written for either: rename one or run them into separate "
            "--out folders",
        ))
    return [item for index, item in enumerate(items) if index not in clashes], failed


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


def contrast_warning(segmenter: Segmenter | Predictor, contrast: str | None) -> str:
    """A warning when the input's contrast is not one the lesion model was trained on, e.g. a T2w model on a PSIR
    scan, or when it is unknown and the cascade has stages of their own for some contrasts (they did not run); ""
    when they agree, the model's contrasts are unknown, or the model is contrast-agnostic (random intensities)."""
    if contrast is None:
        own = sorted({*getattr(segmenter, "lesion_by_contrast", {}), *getattr(segmenter, "cord_by_contrast", {})})
        return (f"contrast not declared (no BIDS suffix such as _T2w, no --contrast): the general stages ran, not this "
                f"model's own stages for {', '.join(own)}" if own else "")
    lesion = segmenter.lesion_for(contrast)
    trained = lesion.metadata.contrasts
    if not trained or contrast in trained or lesion.metadata.contrast_agnostic:
        return ""
    return (
        f"the lesion model was trained on {'/'.join(trained)}, this is {contrast}: expect poor results unless "
        "it is fine-tuned on this contrast (lesionseg train --init-from)"
    )


def _level_map(item: InputFile, image: LoadedImage, options: BatchOptions) -> tuple[np.ndarray | None, str]:
    """The vertebral level map from the level file beside a NIfTI input (canonical grid, integers), or None, and
    its source in words.

    Raises:
        InputError: a point-label file given as a level map, or point labels that give no levels.
    """
    if options.levels_suffix is None or item.series is not None:
        return None, ""
    for extension in NIFTI_EXTENSIONS:
        path = item.path.with_name(f"{item.stem}_{options.levels_suffix}{extension}")
        if path.is_file():
            levels = load_image(path)
            check_same_grid(image.path, image.geometry.shape, image.geometry.affine, path, levels.geometry.shape, levels.geometry.affine)
            try:
                values = level_map_from(np.rint(levels.data).astype(np.int32), options.levels_kind)
            except ValueError as error:
                raise InputError(f"{path}: {error}") from None
            return values, LEVEL_FILE_KINDS[options.levels_kind]
    return None, ""
