"""The README's Python API example runs as written, on a phantom (its file names swapped for the phantom's)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the README lost its Python API example"
    return match.group(1)


def test_readme_api_example_runs(phantom_dataset: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    shutil.copy(phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz", tmp_path / "sub-01_T2w.nii.gz")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_example(), str(README), "exec"), namespace)  # noqa: S102 - our own README
    result, records = namespace["result"], namespace["records"]
    import nibabel as nib

    source = nib.load(tmp_path / "sub-01_T2w.nii.gz")
    assert result.lesion_mask.shape == source.shape and result.cord_mask is not None
    written = nib.load(tmp_path / "sub-01_T2w_lesionseg.nii.gz")
    assert (written.affine == source.affine).all()
    assert records[0].status == "ok" and (tmp_path / "predictions/sub-01_T2w_lesionseg.nii.gz").is_file()


def test_segment_takes_a_path_a_nibabel_image_or_an_array(phantom_dataset: Path) -> None:
    import nibabel as nib
    import numpy as np

    import lesionseg

    path = phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz"
    segmenter = lesionseg.load_segmenter("cascade-synth-v3", device="cpu")
    from_path = segmenter.segment(path)
    image = nib.load(path)
    from_image = segmenter.segment(image)
    from_array = segmenter.segment(np.asanyarray(image.dataobj), image.affine, contrast="T2w")  # no file name
    for other in (from_image, from_array):
        np.testing.assert_array_equal(other.lesion_mask, from_path.lesion_mask)
        np.testing.assert_array_equal(other.cord_mask, from_path.cord_mask)
    assert from_path.lesion_mask.shape == image.shape  # the input's grid, not RAS
