"""``<stem>_lesions.csv`` (one row per lesion) and ``<stem>_lesions.json`` (rows and totals)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from lesionseg.inference.segmenter import Segmentation
from lesionseg.io.inputs import InputFile, output_path
from lesionseg.outputs.base import ScanResult
from lesionseg.outputs.tables import write_csv, write_json

LESIONS_SUFFIX = "lesions"
FIELDS = ["lesion_id", "volume_mm3", "centroid_ras_mm", "centroid_lps_mm", "extent_along_cord_mm", "max_probability",
          "vertebral_level"]


class LesionTableWriter:
    """The lesion table of a scan, as CSV and JSON."""

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(LESIONS_SUFFIX, ".csv"), (LESIONS_SUFFIX, ".json")]

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return ""

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        table = scan.table
        rows = [asdict(row) for row in table.lesions]
        flat = [{**row, "centroid_ras_mm": " ".join(map(str, row["centroid_ras_mm"])),
                 "centroid_lps_mm": " ".join(map(str, row["centroid_lps_mm"]))} for row in rows]
        write_csv(output_path(out_dir, scan.item, LESIONS_SUFFIX, ".csv"), flat, FIELDS)
        payload = {"input": scan.item.label, "lesions": rows, "count": table.count,
                   "total_volume_mm3": table.total_volume_mm3, "connectivity": table.connectivity,
                   "min_volume_mm3": table.min_volume_mm3}
        write_json(output_path(out_dir, scan.item, LESIONS_SUFFIX, ".json"), payload)
