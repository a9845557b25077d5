"""A run's outputs as a BIDS derivative dataset (``lesionseg infer --bids-derivatives``).

``OUT/dataset_description.json`` (``DatasetType`` derivative, ``GeneratedBy`` lesionseg and its version,
``DatasetLinks`` to the source datasets), ``OUT/README``, ``OUT/.bidsignore`` (the outputs BIDS has no name for:
tables, reports, records), and per scan a JSON sidecar beside every BIDS-named image (``Sources`` and
``SpatialReference`` as BIDS URIs of the source scan, the mask ``Type``, the models with their SHA-256) and the
labelled lesion mask's look-up table (``*_dseg.tsv``: one row per lesion, ``index`` = ``lesion_id``, with its
morphometry). File names: :mod:`lesionseg.io.bids`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lesionseg.constants import (
    CORD_OUTPUT_SUFFIX,
    LESION_LABELED_OUTPUT_SUFFIX,
    LESION_OUTPUT_SUFFIX,
    LESION_SOFT_OUTPUT_SUFFIX,
)
from lesionseg.inference.lesions import ROW_FIELDS
from lesionseg.inference.segmenter import Segmentation
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.bids import dataset_root
from lesionseg.io.checkpoint import MODEL_FILE
from lesionseg.io.inputs import InputFile, output_path
from lesionseg.outputs.base import ScanResult
from lesionseg.outputs.lesion_table import flat_rows
from lesionseg.outputs.tables import write_csv, write_json

#: the BIDS version the derivative dataset follows
BIDS_VERSION = "1.10.0"

#: outputs that BIDS has no name for (they keep their lesionseg names; the validator skips them)
BIDSIGNORE = ("*_lesions.csv", "*_lesions.json", "*_report.html", "*_report.png", "*_lesionseg-record.json",
              "*_lesionseg-uncertainty.nii.gz", "lesionseg-viewer", "summary*.csv", "index.html")

#: what each BIDS-named image is (sidecar ``Description``, and ``Type`` for masks)
_IMAGES: dict[str, dict[str, str]] = {
    LESION_OUTPUT_SUFFIX: {"Description": "Binary lesion mask (lesionseg), on the source scan's grid.", "Type": "Lesion"},
    CORD_OUTPUT_SUFFIX: {"Description": "Binary spinal cord mask (lesionseg cascade), on the source scan's grid.",
                         "Type": "ROI"},
    LESION_SOFT_OUTPUT_SUFFIX: {"Description": "Lesion probability (lesionseg), on the source scan's grid."},
    LESION_LABELED_OUTPUT_SUFFIX: {"Description": "Lesions labelled 1..N head to foot; the .tsv has one row per "
                                                  "lesion (docs/lesion-analysis.md)."},
}

#: the look-up table's columns besides index and name (units where they have one)
_COLUMNS: dict[str, dict[str, str]] = {
    name: {"Description": f"lesionseg lesion table column {name} (docs/lesion-analysis.md)",
           **({"Units": "mm^3"} if name.endswith("_mm3") else {"Units": "mm"} if name.endswith("_mm") else {})}
    for name in ROW_FIELDS if name not in ("lesion_id", "centroid_ras_mm", "centroid_lps_mm")
} | {name: {"Description": f"lesion centroid, 'x y z' in mm ({name[9:12].upper()}+ world coordinates)"}
     for name in ("centroid_ras_mm", "centroid_lps_mm")}


@dataclass
class BidsDerivative:
    """The derivative dataset of one run: where its sources live (``DatasetLinks``) and what made it."""

    out_dir: Path
    software_version: str
    model_name: str
    #: source dataset roots -> their names in BIDS URIs (``bids:<name>:<path>``)
    links: dict[Path, str] = field(default_factory=dict)

    @classmethod
    def for_inputs(cls, inputs: Sequence[str | Path], out_dir: Path, *, software_version: str,
                   model_name: str) -> BidsDerivative:
        """The derivative of a run over ``inputs``: each input's BIDS dataset (the folder itself when it holds a
        ``dataset_description.json``, else the nearest one above; else the folder given, or a file's folder) is
        linked as ``raw`` (``raw2``, ... for more)."""
        roots: list[Path] = []
        for raw in inputs:
            path = Path(raw).resolve()
            root = dataset_root(path) or (path if path.is_dir() else path.parent)
            if root not in roots:
                roots.append(root)
        links = {root: "raw" if index == 0 else f"raw{index + 1}" for index, root in enumerate(roots)}
        return cls(Path(out_dir), software_version, model_name, links)

    def write_dataset_files(self) -> None:
        """``dataset_description.json``, ``README`` and ``.bidsignore`` (atomically; rewritten by every run)."""
        description = {
            "Name": "lesionseg spinal cord and lesion segmentations",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "lesionseg", "Version": self.software_version,
                             "Description": f"model {self.model_name}" if self.model_name else "lesionseg"}],
            "DatasetLinks": {name: os.path.relpath(root, self.out_dir.resolve()) for root, name in self.links.items()},
        }
        write_json(self.out_dir / "dataset_description.json", description)
        atomic_write_text(self.out_dir / ".bidsignore", "\n".join(BIDSIGNORE) + "\n")
        atomic_write_text(self.out_dir / "README", _readme(self.model_name))

    def source_uri(self, item: InputFile) -> str:
        """The BIDS URI of a scan, ``bids:<dataset>:<path in it>`` (its file name if it is under no linked folder)."""
        path = item.path.resolve()
        for root, name in self.links.items():
            if root in path.parents:
                return f"bids:{name}:{path.relative_to(root).as_posix()}"
        return path.name


class BidsSidecarWriter:
    """The JSON sidecar of each BIDS-named image and the labelled mask's look-up table (a writer of
    :mod:`lesionseg.outputs`; writes nothing for an input without a BIDS name)."""

    def __init__(self, derivative: BidsDerivative, *, soft: bool, models: list[dict[str, Any]]) -> None:
        self.derivative = derivative
        self.soft = soft
        self.models = models

    def images(self, cord: bool) -> list[str]:
        """The output suffixes of the images that get a sidecar."""
        return [LESION_OUTPUT_SUFFIX, LESION_LABELED_OUTPUT_SUFFIX, *([LESION_SOFT_OUTPUT_SUFFIX] if self.soft else []),
                *([CORD_OUTPUT_SUFFIX] if cord else [])]

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        if item.bids is None:
            return []
        return [*((suffix, ".json") for suffix in self.images(segments_cord)), (LESION_LABELED_OUTPUT_SUFFIX, ".tsv")]

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return ""

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        if scan.item.bids is None:
            return
        source = self.derivative.source_uri(scan.item)
        common = {"Sources": [source], "SpatialReference": source, "ModelName": self.derivative.model_name,
                  "Models": self.models, "LesionStage": scan.segmentation.lesion_stage,
                  "CordStage": scan.segmentation.cord_stage}
        for suffix in self.images(scan.segmentation.cord is not None):
            columns = _COLUMNS if suffix == LESION_LABELED_OUTPUT_SUFFIX else {}
            write_json(output_path(out_dir, scan.item, suffix, ".json"), {**_IMAGES[suffix], **common, **columns})
        rows = [{"index": row["lesion_id"], "name": f"lesion {row['lesion_id']}", **row} for row in flat_rows(scan.table)]
        rows = [{key: "n/a" if value in (None, "") else value for key, value in row.items()} for row in rows]
        write_csv(output_path(out_dir, scan.item, LESION_LABELED_OUTPUT_SUFFIX, ".tsv"), rows,
                  ["index", "name", *(name for name in ROW_FIELDS if name in _COLUMNS)], delimiter="\t")


def model_summaries(stages: Sequence[Any]) -> list[dict[str, Any]]:
    """What each network stage was trained for and the SHA-256 of its ``model.pt`` (from its metadata)."""
    return [{"Target": stage.metadata.target, "Contrasts": stage.metadata.contrasts,
             "SHA256": stage.metadata.sha256.get(MODEL_FILE)} for stage in stages]


def _readme(model_name: str) -> str:
    return (
        "# lesionseg derivatives\n\n"
        f"Spinal cord and lesion segmentations by lesionseg{f' (model {model_name})' if model_name else ''}, on each "
        "source scan's own grid. Research use only; not a medical device.\n\n"
        "- `*_label-lesion_desc-<contrast>_mask.nii.gz`: lesion mask\n"
        "- `*_label-SC_desc-<contrast>_mask.nii.gz`: spinal cord mask\n"
        "- `*_desc-<contrast>lesions_dseg.nii.gz` and `.tsv`: lesions labelled head to foot, one row per lesion\n"
        "- `*_label-lesion_desc-<contrast>_probseg.nii.gz`: lesion probability (with --soft)\n"
        "- `*_lesions.csv/.json`, `*_report.html/.png`, `summary.csv`, `index.html`: tables and reports (in "
        "`.bidsignore`)\n"
    )
