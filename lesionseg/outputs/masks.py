"""NIfTI outputs on the input's native grid: the lesion mask (``<stem>_lesionseg.nii.gz``), the cord mask
(``<stem>_seg.nii.gz``, with a cascade), the lesion probabilities (``<stem>_lesionseg-soft.nii.gz``) and the
per-voxel variance over ensemble members and TTA flips (``<stem>_lesionseg-uncertainty.nii.gz``)."""

from __future__ import annotations

from pathlib import Path

from lesionseg.constants import (
    CORD_OUTPUT_SUFFIX,
    LESION_OUTPUT_SUFFIX,
    LESION_SOFT_OUTPUT_SUFFIX,
    UNCERTAINTY_OUTPUT_SUFFIX,
)
from lesionseg.inference.segmenter import Segmentation
from lesionseg.io.inputs import InputFile, output_path
from lesionseg.outputs.base import ScanResult

NIFTI = ".nii.gz"


class LesionMaskWriter:
    """The binary lesion mask."""

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(LESION_OUTPUT_SUFFIX, NIFTI)]

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return ""

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        scan.segmentation.lesion.save(output_path(out_dir, scan.item, LESION_OUTPUT_SUFFIX, NIFTI))


class CordMaskWriter:
    """The cord mask of a cascade."""

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(CORD_OUTPUT_SUFFIX, NIFTI)] if segments_cord else []

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return ""

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        if scan.segmentation.cord is not None:
            scan.segmentation.cord.save(output_path(out_dir, scan.item, CORD_OUTPUT_SUFFIX, NIFTI))


class SoftMapWriter:
    """The lesion probabilities (float32 in [0, 1])."""

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(LESION_SOFT_OUTPUT_SUFFIX, NIFTI)]

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return ""

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        scan.segmentation.lesion.save(output_path(out_dir, scan.item, LESION_SOFT_OUTPUT_SUFFIX, NIFTI), soft=True)


class UncertaintyWriter:
    """The variance over TTA flips and ensemble members (only when there are several predictions)."""

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(UNCERTAINTY_OUTPUT_SUFFIX, NIFTI)]

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return "" if segmentation.lesion.variance is not None else "no uncertainty map: it needs --tta or several models"

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        scan.segmentation.lesion.save(output_path(out_dir, scan.item, UNCERTAINTY_OUTPUT_SUFFIX, NIFTI), variance=True)
