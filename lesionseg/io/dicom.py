"""DICOM series in (SimpleITK's GDCM series reader) and DICOM SEG out (highdicom).

A DICOM series is read into the same validated, canonical :class:`~lesionseg.io.nifti.LoadedImage` as a NIfTI
file: its native grid is the series' voxel grid (columns, rows, slices in GDCM's slice order), with the RAS
affine TorchIO derives from SimpleITK's LPS geometry. A mask on that native grid maps back to the source
frames one slice per file, which is what the SEG writer uses.

Patient identifiers stay in the DICOM objects: they are copied from the source into the SEG (as the standard
requires) and never logged or written anywhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.misc import is_dicom

from lesionseg.errors import InputError
from lesionseg.io.atomic import atomic_write
from lesionseg.io.nifti import LoadedImage, validated_image
from lesionseg.io.validate import check_spacing_range, one_line

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DicomSeries:
    """One series found in a folder: its UID, description and files in slice order.

    ``identity`` is a hash of the patient, study and series identifiers (no identifier can be read back from it):
    two series differ in it whenever they differ in any of the three.
    """

    folder: Path
    uid: str
    description: str
    files: tuple[Path, ...]
    identity: str = ""

    @property
    def name(self) -> str:
        """The name of its outputs: the description (unsafe characters replaced) and the first 10 hex digits of
        ``identity``, so two patients' series of one description never share output files."""
        text = re.sub(r"[^A-Za-z0-9._-]+", "_", self.description).strip("_") or "series"
        return f"{text}_{self.identity[:10]}" if self.identity else text


def series_identity(patient_id: str, study_uid: str, series_uid: str) -> str:
    """SHA-256 of the three identifiers (hex): an output name that keys on them without revealing them."""
    return hashlib.sha256("\x00".join((patient_id, study_uid, series_uid)).encode("utf-8")).hexdigest()


@contextlib.contextmanager
def _quiet_itk() -> Iterator[None]:
    """Silence ITK's own warnings (GDCM prints one for every folder without a series)."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def is_dicom_folder(folder: Path) -> bool:
    """True when the folder (not its sub-folders) holds a DICOM file (``DICM`` preamble) that GDCM groups into
    a series."""
    if not folder.is_dir():
        return False
    if not any(p.is_file() and is_dicom(p) for p in folder.iterdir()):
        return False
    with _quiet_itk():
        return bool(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def find_series(folder: str | Path) -> list[DicomSeries]:
    """Every series in ``folder`` (GDCM groups files by SeriesInstanceUID and sorts them by position).

    Raises:
        InputError: not a folder, or no DICOM series in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    with _quiet_itk():
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not uids:
        raise InputError(f"{folder}: no DICOM series found")
    found = []
    for uid in uids:
        files = tuple(Path(f) for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
        try:
            header = pydicom.dcmread(files[0], stop_before_pixels=True)
            description = str(getattr(header, "SeriesDescription", ""))
            patient, study = str(getattr(header, "PatientID", "")), str(getattr(header, "StudyInstanceUID", ""))
        except Exception:  # noqa: BLE001 - a description is optional; the series UID alone then keys the outputs
            description, patient, study = "", "", ""
        identity = series_identity(patient, study, str(uid))
        found.append(DicomSeries(folder=folder, uid=str(uid), description=description, files=files, identity=identity))
    return found


def select_series(
    series: list[DicomSeries], *, uid: str | None = None, description: str | None = None
) -> list[DicomSeries]:
    """Series matching a SeriesInstanceUID and/or a description regular expression (all when neither is given).

    Raises:
        InputError: nothing matches.
    """
    chosen = [
        s
        for s in series
        if (uid is None or s.uid == uid) and (description is None or re.search(description, s.description, re.IGNORECASE))
    ]
    if not chosen:
        wanted = f"SeriesInstanceUID {uid}" if uid else f"description matching {description!r}"
        raise InputError(f"{series[0].folder}: no series with {wanted} ({len(series)} series in the folder)")
    return chosen


def load_series(series: DicomSeries) -> LoadedImage:
    """Read one series with SimpleITK and validate it like a NIfTI file.

    Raises:
        InputError: unreadable files, missing slices (uneven spacing), or any image check of
            :func:`lesionseg.io.nifti.load_image`.
    """
    where = series.folder / series.name
    _check_even_slices(where, series.files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in series.files])
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InputError(f"{where}: cannot read DICOM series ({one_line(error)})") from None
    check_spacing_range(where, tuple(image.GetSpacing()))
    data, affine = _sitk_to_ras(image)
    nifti = nib.Nifti1Image(data, affine)
    nifti.set_qform(affine, code=1)
    nifti.set_sform(affine, code=1)
    return validated_image(where, nifti, data)


def _sitk_to_ras(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """A SimpleITK volume (LPS physical space, z-y-x array) as an x-y-z array and its RAS affine."""
    data = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3) * np.asarray(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    return data, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _check_even_slices(where: Path, files: tuple[Path, ...]) -> None:
    """Refuse series whose slices are not one stack: orientations that differ (a localiser's three planes),
    duplicated positions (the same slice twice, two acquisitions mixed) or uneven spacing (missing slices): each
    would give the volume a wrong geometry."""
    if len(files) < 2:
        return
    positions, first = [], None
    for path in files:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as error:  # noqa: BLE001 - pydicom raises many types for bad files
            raise InputError(f"{where}: cannot read DICOM file {path.name} ({one_line(error)})") from None
        if "ImagePositionPatient" not in header or "ImageOrientationPatient" not in header:
            return
        orientation = np.asarray(header.ImageOrientationPatient, dtype=float)
        if first is None:
            first = orientation
        elif not np.allclose(orientation, first, atol=1e-3):
            raise InputError(
                f"{where}: slices with different orientations in one series (e.g. {path.name}); expected one "
                "stack of parallel slices"
            )
        normal = np.cross(first[:3], first[3:])
        positions.append(float(np.dot(normal, np.asarray(header.ImagePositionPatient, dtype=float))))
    gaps = np.diff(np.sort(positions))
    duplicated = int(np.count_nonzero(gaps < 1e-3))
    if duplicated:
        raise InputError(
            f"{where}: {duplicated} slice position(s) occur twice in the series (duplicated files, or two "
            "acquisitions with one SeriesInstanceUID); remove the duplicates"
        )
    if len(gaps) > 1 and gaps.max() > 1.5 * np.median(gaps):
        raise InputError(
            f"{where}: slice positions are unevenly spaced (gap of {gaps.max():.2f} mm vs {np.median(gaps):.2f} mm); "
            "missing slices?"
        )


def native_to_frames(mask: np.ndarray) -> np.ndarray:
    """A mask on a series' native grid ``(columns, rows, slices)`` as frames ``(slices, rows, columns)``."""
    return np.ascontiguousarray(np.transpose(mask, (2, 1, 0)))


def _segment_descriptions(names: list[str], software_version: str) -> list:
    """highdicom segment descriptions: ``lesion`` (a morphologically abnormal structure) and ``cord`` (spinal cord
    tissue), each made by lesionseg (an AI algorithm of this version)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = hd.AlgorithmIdentificationSequence(
        name="lesionseg", family=codes.cid7162.ArtificialIntelligence, version=software_version
    )
    property_types = {
        "lesion": (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion),
        "cord": (codes.SCT.Tissue, codes.SCT.SpinalCord),
    }
    descriptions = []
    for number, name in enumerate(names, start=1):
        category, kind = property_types.get(name, (codes.SCT.Tissue, codes.SCT.Tissue))
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=name, segmented_property_category=category,
            segmented_property_type=kind, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        ))
    return descriptions


def write_dicom_seg(
    series: DicomSeries,
    masks: dict[str, np.ndarray],
    path: str | Path,
    *,
    software_version: str,
    series_number: int = 900,
) -> Path:
    """Write a DICOM SEG referencing ``series``, one segment per mask, atomically.

    Args:
        series: the source series (its files give the frames and the frame of reference).
        masks: segment label (``"lesion"``, ``"cord"``) -> uint8 mask on the series' native grid.
        path: destination ``.dcm``.
        software_version: recorded as SoftwareVersions and in the algorithm identification.

    Raises:
        InputError: the source files cannot be read or a mask is not on the series' grid.
    """
    import highdicom as hd

    try:
        sources = [pydicom.dcmread(f) for f in series.files]
    except Exception as error:  # noqa: BLE001
        raise InputError(f"{series.folder}: cannot read DICOM files ({one_line(error)})") from None
    frames = []
    expected = (len(sources), int(sources[0].Rows), int(sources[0].Columns))
    for name, mask in masks.items():
        frame_stack = native_to_frames(np.asarray(mask) > 0)
        if frame_stack.shape != expected:
            raise InputError(f"{series.folder}: {name} mask shape {frame_stack.shape} is not the series grid {expected}")
        frames.append(frame_stack)
    pixel_array = np.stack(frames, axis=-1).astype(np.uint8)
    descriptions = _segment_descriptions(list(masks), software_version)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="lesionseg",
        manufacturer_model_name="lesionseg",
        software_versions=software_version,
        device_serial_number="0",
        series_description="lesionseg (research use, not a diagnostic device)",
        omit_empty_frames=False,
    )
    return atomic_write(Path(path), lambda temporary: seg.save_as(temporary))
