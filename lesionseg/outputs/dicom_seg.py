"""``<stem>_seg.dcm``: a DICOM SEG (segments ``lesion`` and, with a cascade, ``cord``) for a DICOM input."""

from __future__ import annotations

from pathlib import Path

from lesionseg.constants import CORD_OUTPUT_SUFFIX
from lesionseg.inference.segmenter import Segmentation
from lesionseg.io.dicom import write_dicom_seg
from lesionseg.io.inputs import InputFile, output_path
from lesionseg.outputs.base import ScanResult


class DicomSegWriter:
    """A DICOM SEG referencing the source series (NIfTI inputs get none, with a warning)."""

    def __init__(self, software_version: str) -> None:
        self.software_version = software_version

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(CORD_OUTPUT_SUFFIX, ".dcm")] if item.series is not None else []

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return "" if item.series is not None else "no DICOM SEG: the input is not a DICOM series"

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        geometry = scan.image.geometry
        masks = {"lesion": geometry.to_native(scan.segmentation.lesion.mask)}
        if scan.segmentation.cord is not None:
            masks["cord"] = geometry.to_native(scan.segmentation.cord.mask)
        assert scan.item.series is not None  # skip_reason said so
        write_dicom_seg(scan.item.series, masks, output_path(out_dir, scan.item, CORD_OUTPUT_SUFFIX, ".dcm"),
                        software_version=self.software_version)
