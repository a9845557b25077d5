"""``<stem>_lesions.csv`` (one row per lesion, head to foot), ``<stem>_lesions.json`` (rows, totals and the
per-level table) and ``<stem>_lesions-labeled.nii.gz`` (the lesion mask whose values are the rows' ``lesion_id``,
on the input's native grid)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from lesionseg.constants import LESION_LABELED_OUTPUT_SUFFIX as LABELED_SUFFIX
from lesionseg.inference.lesions import ROW_FIELDS, LesionTable
from lesionseg.inference.segmenter import Segmentation
from lesionseg.io.inputs import InputFile, output_path
from lesionseg.io.nifti import save_mask
from lesionseg.outputs.base import ScanResult
from lesionseg.outputs.tables import write_csv, write_json

LESIONS_SUFFIX = "lesions"
FIELDS = list(ROW_FIELDS)


def table_payload(label: str, table: LesionTable) -> dict:
    """The JSON of a lesion table: rows, totals, the per-level table and the rules the rows follow."""
    return {
        "input": label,
        "lesions": [asdict(row) for row in table.lesions],
        "count": table.count,
        "total_volume_mm3": round(table.total_volume_mm3, 3),
        "per_level": [asdict(row) for row in table.per_level],
        "level_source": table.level_source,
        "connectivity": table.connectivity,
        "min_volume_mm3": table.min_volume_mm3,
    }


def flat_rows(table: LesionTable) -> list[dict]:
    """The table's rows as flat dictionaries (centroids as "x y z" text), for CSV and TSV files."""
    return [{**asdict(row), "centroid_ras_mm": " ".join(map(str, row.centroid_ras_mm)),
             "centroid_lps_mm": " ".join(map(str, row.centroid_lps_mm))} for row in table.lesions]


class LesionTableWriter:
    """The lesion table of a scan, as CSV and JSON, and the labelled lesion mask."""

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(LESIONS_SUFFIX, ".csv"), (LESIONS_SUFFIX, ".json"), (LABELED_SUFFIX, ".nii.gz")]

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return ""

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        table = scan.table
        write_csv(output_path(out_dir, scan.item, LESIONS_SUFFIX, ".csv"), flat_rows(table), FIELDS)
        write_json(output_path(out_dir, scan.item, LESIONS_SUFFIX, ".json"), table_payload(scan.item.label, table))
        if table.labels is not None:
            save_mask(table.labels, scan.segmentation.lesion.geometry,
                      output_path(out_dir, scan.item, LABELED_SUFFIX, ".nii.gz"), labeled=True)
