"""The batch's index page: scans by lesion load, file names only."""

from __future__ import annotations

from pathlib import Path

from lesionseg.outputs.summary import InferenceRecord
from lesionseg.reporting.inference_html import write_index


def test_the_index_lists_scans_by_lesion_load_with_file_names_only(tmp_path: Path) -> None:
    def record(name: str, status: str, lesions: int, volume: float) -> InferenceRecord:
        return InferenceRecord(input=f"/pacs/DOE^JOHN/{name}", status=status, output="", lesions=lesions,
                               lesion_volume_mm3=volume, seconds=1.0, error="bad file" if status == "failed" else "")

    records = [record("a.nii.gz", "ok", 1, 10.0), record("b.nii.gz", "failed", 0, 0.0),
               record("c.nii.gz", "ok", 3, 250.0), record("d.nii.gz", "ok", 2, 250.0)]
    page = write_index(records, tmp_path).read_text()
    assert page.index("c.nii.gz") < page.index("d.nii.gz") < page.index("a.nii.gz") < page.index("b.nii.gz")
    assert "DOE^JOHN" not in page
