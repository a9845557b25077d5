"""The writer interface: each output of a scan is one object that names the files it may write (so they can be
checked and announced before anything is written) and writes them from a :class:`ScanResult`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lesionseg.inference.lesions import LesionTable
from lesionseg.inference.segmenter import Segmentation
from lesionseg.io.inputs import InputFile
from lesionseg.io.nifti import LoadedImage
from lesionseg.outputs.summary import InferenceRecord


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Everything known about one segmented scan when its outputs are written."""

    item: InputFile
    image: LoadedImage
    segmentation: Segmentation
    table: LesionTable
    record: InferenceRecord


class Writer(Protocol):
    """One output of a scan."""

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        """The (suffix, extension) of every file it may write for ``item`` (``OUT/.../<stem>_<suffix><ext>``)."""
        ...

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        """Why it writes nothing for this scan (a warning for the summary), or "" when it writes."""
        ...

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        """Write its files for ``scan`` under ``out_dir``, atomically.

        Raises:
            LesionsegError: the output cannot be written (one line naming the file).
        """
        ...
