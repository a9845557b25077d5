"""Input discovery: NIfTI files, folders, BIDS datasets and DICOM series expanded into scans, each with the name
its outputs get.

The naming rule: a scan's outputs go to ``OUT/<relative folder>/<stem>_<suffix><extension>``, where the relative
folder mirrors the scan's sub-folder under the input folder given (under that folder's own name when several
folders are given), and ``<stem>`` is the file name without ``.nii``/``.nii.gz``, or for a DICOM series its
description plus a hash of its patient, study and series identifiers (:attr:`DicomSeries.name`).

As a BIDS derivative dataset (``bids_derivatives``), every input must have a BIDS file name; its outputs go to
``OUT/sub-<label>/[ses-<label>/]anat/`` and those that BIDS names are named as :mod:`lesionseg.io.bids` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lesionseg.constants import LESION_OUTPUT_SUFFIX, NIFTI_EXTENSIONS, OUTPUT_SUFFIXES
from lesionseg.errors import InputError
from lesionseg.io.bids import DERIVATIVE_ENDINGS, BidsName, parse_bids_name
from lesionseg.io.dicom import DicomSeries, find_series, is_dicom_folder, select_series
from lesionseg.io.nifti import is_nifti, strip_nifti_extension
from lesionseg.io.run_folder import file_fingerprint

#: Folders never searched for inputs: BIDS derivatives hold labels and outputs, not scans.
SKIPPED_FOLDERS = ("derivatives",)


@dataclass(frozen=True)
class InputFile:
    """An input scan (a NIfTI file, or a DICOM series in a folder) and where its outputs go."""

    path: Path
    relative_folder: Path
    series: DicomSeries | None = None
    #: its BIDS name when the outputs form a BIDS derivative dataset
    bids: BidsName | None = None

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
class InputSelection:
    """Which inputs to take: DICOM series by UID or description, and the level-map suffix (not a scan)."""

    series_uid: str | None = None
    series_description: str | None = None
    levels_suffix: str | None = None
    #: outputs as a BIDS derivative dataset: inputs need BIDS names
    bids_derivatives: bool = False


def output_path(out_dir: Path, item: InputFile, suffix: str = LESION_OUTPUT_SUFFIX, extension: str = ".nii.gz") -> Path:
    """``OUT/<relative folder>/<stem>_<suffix><extension>``, or the output's BIDS derivative name."""
    bids_name = item.bids.derivative(suffix, extension) if item.bids is not None else None
    return out_dir / item.relative_folder / (bids_name or f"{item.stem}_{suffix}{extension}")


def collect_inputs(
    inputs: Sequence[str | Path], *, selection: InputSelection | None = None, out_dir: Path | None = None
) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """Expand files and folders into scans: NIfTI files (recursively, skipping ``derivatives``, hidden files and
    our outputs in the output folder) and DICOM series (folders whose files GDCM groups into series). A file
    reached twice (given twice, through its folder, or by a symbolic link) is one scan.

    Returns:
        The scans found, and (argument, one-line error) for each argument that yields nothing usable.
    """
    selection = selection or InputSelection()
    found: list[InputFile] = []
    failed: list[tuple[str, str]] = []
    seen: set[Path] = set()
    several_folders = sum(1 for raw in inputs if Path(raw).is_dir()) > 1
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            prefix = Path(path.resolve().name) if several_folders else Path(".")
            _collect_folder(path, prefix, selection, out_dir, found, failed, seen)
        elif path.is_file() and is_nifti(path):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(InputFile(path, Path(".")))
        else:
            cause = "no such file or folder" if not path.exists() else "not a NIfTI file (.nii or .nii.gz) or a DICOM folder"
            failed.append((str(path), f"{path}: {cause}"))
    return _as_derivatives(found, failed) if selection.bids_derivatives else (found, failed)


def _as_derivatives(
    found: list[InputFile], failed: list[tuple[str, str]]
) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """The inputs with their BIDS names and folders; those without a BIDS name (DICOM series, other names) fail."""
    named = []
    for item in found:
        bids = parse_bids_name(item.path) if item.series is None else None
        if bids is None:
            cause = "a DICOM series" if item.series is not None else "not a BIDS file name (sub-<label>_..._<suffix>)"
            message = f"{item.label}: {cause}; a BIDS derivative dataset needs BIDS inputs (run without --bids-derivatives)"
            failed.append((item.label, message))
        else:
            named.append(replace(item, relative_folder=bids.folder, bids=bids))
    return named, failed


def _has_other_files(folder: Path) -> bool:
    return any(p.is_file() and not p.name.startswith(".") and not p.name.endswith(NIFTI_EXTENSIONS) for p in folder.iterdir())


def _collect_folder(
    root: Path,
    prefix: Path,
    selection: InputSelection,
    out_dir: Path | None,
    found: list[InputFile],
    failed: list[tuple[str, str]],
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
            if in_out and strip_nifti_extension(candidate).endswith((*OUTPUT_SUFFIXES, *DERIVATIVE_ENDINGS)):
                continue  # our own outputs, from this or an earlier run
            if selection.levels_suffix and strip_nifti_extension(candidate).endswith(f"_{selection.levels_suffix}"):
                continue  # a level map, not a scan
            if candidate.resolve() not in seen:
                seen.add(candidate.resolve())
                found.append(InputFile(candidate, prefix / relative))
        if _has_other_files(folder) and is_dicom_folder(folder):
            try:
                chosen = select_series(find_series(folder), uid=selection.series_uid, description=selection.series_description)
            except InputError as error:
                failed.append((str(folder), str(error)))
                continue
            found.extend(InputFile(folder, prefix / relative, series) for series in chosen)


def shard_items(items: Sequence[InputFile], shard: tuple[int, int] | None) -> list[InputFile]:
    """The inputs of one shard: every ``count``-th one from ``index`` (the input list is sorted, so every process
    computes the same split)."""
    if shard is None:
        return list(items)
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: the index must be in 0..{count - 1}")
    return list(items[index::count])
