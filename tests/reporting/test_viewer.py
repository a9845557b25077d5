"""The report's interactive viewer in headless Chromium (Playwright driving Debian's chromium; skipped where
either is missing): it opens offline, scrolls, zooms, windows, toggles overlays and jumps to a clicked lesion."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lesionseg.inference.lesions import lesion_table
from lesionseg.inference.predictor import Prediction
from lesionseg.io.inputs import InputFile
from lesionseg.io.nifti import load_image
from lesionseg.outputs.summary import InferenceRecord
from lesionseg.reporting.inference_html import DISCLAIMER, lesion_voxels, write_image_report
from lesionseg.reporting.viewer_assets import VIEWER_FOLDER

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]


def _report(phantom_dataset: Path, out: Path) -> tuple[Path, np.ndarray]:
    """A report of a phantom with its true cord and two box lesions in the cord, in a sub-folder of ``out``."""
    path = phantom_dataset / "sub-001/anat/sub-001_T2w.nii.gz"
    image = load_image(path)
    cord = load_image(phantom_dataset / "derivatives/labels/sub-001/anat/sub-001_T2w_seg-manual.nii.gz").data
    cord = cord.astype(np.uint8)
    lesion = np.zeros_like(cord)
    zs = np.flatnonzero(cord.any(axis=(0, 1)))
    for z in (zs[len(zs) // 4], zs[3 * len(zs) // 4]):
        x, y = np.argwhere(cord[:, :, z])[len(np.argwhere(cord[:, :, z])) // 2]
        lesion[x - 1:x + 2, y - 1:y + 2, z - 2:z + 3] = cord[x - 1:x + 2, y - 1:y + 2, z - 2:z + 3]
    cord_prediction = Prediction(cord.astype(np.float32), cord, image.affine, image.geometry)
    table = lesion_table(lesion, image.affine, cord=cord)
    record = InferenceRecord(input=str(path), status="ok", output="", lesions=table.count,
                             lesion_volume_mm3=table.total_volume_mm3, seconds=0.0, error="", warning="a stage warning")
    item = InputFile(path=path, relative_folder=Path("site-a"))
    page = write_image_report(item, image, cord_prediction, table, record, out,
                              model_name="/private/models/cascade-x", model_version="0")
    return page, table.labels


def _location(page) -> dict:
    return page.evaluate("() => ({vox: Array.from(window.lesionsegLocation.vox),"
                         " values: window.lesionsegLocation.values.map(v => v.value)})")


def test_the_viewer_scrolls_zooms_windows_toggles_and_jumps(phantom_dataset: Path, tmp_path: Path) -> None:
    report, labels = _report(phantom_dataset, tmp_path)
    text = report.read_text()
    assert text.index(DISCLAIMER) < text.index("a stage warning") < text.index("lesionseg-canvas")
    assert str(phantom_dataset) not in text and "/private/models" not in text and "cascade-x" in text
    assert (tmp_path / VIEWER_FOLDER / "niivue.umd.js").is_file() and (report.parent / "sub-001_T2w_report.png").is_file()
    requested = []
    with playwright.sync_playwright() as session:
        browser = session.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        page.goto(report.as_uri())
        page.wait_for_function("document.getElementById('viewer').dataset.ready !== 'false'", timeout=60000)
        assert page.eval_on_selector("#viewer", "e => e.dataset.ready") == "true"
        assert page.evaluate("() => window.lesionsegViewer.opts.isRadiologicalConvention") is True
        assert page.evaluate("() => window.lesionsegViewer.opts.isOrientationTextVisible") is True
        first, second = lesion_voxels(labels)
        start = _location(page)
        assert start["vox"] == first and start["values"][2] == 1  # opened on lesion 1: cord 1, lesion id 1
        page.click("tr[data-lesion='2']")
        jumped = _location(page)
        assert jumped["vox"] == second and jumped["values"][1:] == [1, 2]
        page.click("button[data-plane='axial']")
        box = page.locator("#lesionseg-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(300)
        assert _location(page)["vox"][2] != second[2]  # the wheel moved to another axial slice
        page.click("#zoom-in")
        assert page.evaluate("() => window.lesionsegViewer.scene.pan2Dxyzmm[3]") > 1.0
        before = page.locator("#lesionseg-canvas").screenshot()
        page.uncheck("#show-cord")
        page.uncheck("#show-lesions")
        assert page.evaluate("() => window.lesionsegViewer.volumes.slice(1).map(v => v.opacity)") == [0, 0]
        assert page.locator("#lesionseg-canvas").screenshot() != before
        page.fill("#window-high", "12345")
        page.dispatch_event("#window-high", "change")
        assert page.evaluate("() => window.lesionsegViewer.volumes[0].cal_max") == 12345
        browser.close()
    assert all(url.startswith("file://") for url in requested), requested  # offline: nothing but local files

