"""Self-contained HTML reports of inference: one page per image and an index page per batch.

Each image page shows, top to bottom: "research use, not a diagnostic device", the model's and the stage's
warnings, the input's file name (never its folders), model, contrast and date; an interactive viewer (NiiVue,
:mod:`lesionseg.reporting.viewer_assets`: every slice in three planes, zoom, window, overlay toggles, a click on a
lesion row goes to it; radiological convention, orientation letters); the lesion table (head to foot) and the
per-level table; a static PNG summary (also ``<stem>_report.png``, for PDFs and PACS). The page opens offline:
the scan is embedded, the viewer's scripts are in the output folder's ``lesionseg-viewer/``.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy import ndimage

from lesionseg.analysis.levels import level_name
from lesionseg.constants import LESION_OUTPUT_SUFFIX
from lesionseg.inference.lesions import LesionRow, LesionTable
from lesionseg.inference.predictor import Prediction
from lesionseg.inference.segmenter import Segmentation
from lesionseg.io.atomic import atomic_write, atomic_write_text
from lesionseg.io.bids import source_stem
from lesionseg.io.inputs import InputFile, output_path
from lesionseg.io.nifti import LoadedImage
from lesionseg.outputs.base import ScanResult
from lesionseg.outputs.summary import InferenceRecord

DISCLAIMER = "Research use, not a diagnostic device. Results must be reviewed by a qualified reader."
REPORT_SUFFIX = "report"
#: everything up to the last slash or backslash of each path in a text
_FOLDERS = re.compile(r"[^\s,;]*[/\\]")
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f2f2f2}
td.l,th.l{text-align:left} .warn{background:#fff4e0;border:1px solid #f0c070;padding:8px;margin:1em 0}
.lesion{display:inline-block;border:1px solid #ddd;margin:4px;padding:4px;font-size:12px;vertical-align:top}
.note{color:#555;font-size:12px}
#viewer{margin:1em 0} .canvas-box{width:100%;height:560px;position:relative;background:#000}
.controls{margin:4px 0;font-size:13px} .controls button{margin-right:3px}
tr.lesion-row{cursor:pointer} tr.lesion-row:hover{background:#eef5ff} img.summary{max-width:100%}
"""


def _page(title: str, body: list[str]) -> str:
    head = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
    return "\n".join([head, f"<p class='warn'>{html.escape(DISCLAIMER)}</p>", *body, "</body></html>"])


def model_label(model: str) -> str:
    """A model's name without its folders (``/opt/models/cascade-synth-v3`` -> ``cascade-synth-v3``)."""
    return _FOLDERS.sub("", model)


def display_name(item: InputFile) -> str:
    """What a report shows of its input: the file name (never its folders, which may carry a patient's name), or
    for DICOM the series' output name (description and a hash)."""
    return item.path.name if item.series is None else item.stem


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _level_cell(row: LesionRow) -> str:
    """The lesion's level, or its share of each level when it spans several (``C3 62%, C4 38%``)."""
    return html.escape(row.level_shares if "," in row.level_shares else row.vertebral_level) or "-"


def _lesion_rows(table: LesionTable) -> str:
    """The lesion table (head to foot) as HTML; a click on a row moves the viewer to the lesion."""
    header = ("<table id='lesion-table'><tr><th>#</th><th>level</th><th>volume mm3</th><th>length mm</th>"
              "<th>AP x LR mm</th><th>max diameter mm</th><th>max axial damage</th><th>dorsal / ventral bridge mm</th>"
              "<th class='l'>position</th><th class='l'>nearest disc</th><th class='l'>centroid RAS mm</th>"
              "<th>max probability</th></tr>")
    rows = [
        f"<tr class='lesion-row' data-lesion='{row.lesion_id}'><td>{row.lesion_id}</td><td>{_level_cell(row)}</td>"
        f"<td>{row.volume_mm3:.1f}</td><td>{row.length_si_mm:.1f}</td><td>{row.width_ap_mm:.1f} x {row.width_lr_mm:.1f}</td>"
        f"<td>{row.max_equivalent_diameter_mm:.1f}</td><td>{_number(row.max_axial_damage_ratio, 2)}</td>"
        f"<td>{_number(row.dorsal_bridge_mm)} / {_number(row.ventral_bridge_mm)}</td>"
        f"<td class='l'>{html.escape(' '.join(filter(None, (row.position, row.side))) or '-')}</td>"
        f"<td class='l'>{html.escape(row.nearest_disc) + f' ({row.distance_to_disc_mm:+.1f} mm)' if row.nearest_disc else '-'}</td>"
        f"<td class='l'>{', '.join(f'{v:.1f}' for v in row.centroid_ras_mm)}</td><td>{row.max_probability:.2f}</td></tr>"
        for row in table.lesions
    ]
    return "\n".join([header, *rows, "</table>"])


def _level_rows(table: LesionTable) -> list[str]:
    if not table.per_level:
        return ["<p class='note'>No vertebral levels: give a level map (<code>--levels-suffix</code>).</p>"]
    rows = "".join(f"<tr><td class='l'>{html.escape(r.vertebral_level)}</td><td>{r.lesions}</td><td>{r.volume_mm3:.1f}</td></tr>"
                   for r in table.per_level)
    note = ("<p class='warn'>Automatic levels: discs and C2 found by models, the disc below C2 named C2-C3; check "
            "them on the sagittal view, or give a level map (<code>--levels-suffix</code>).</p>")
    check = [note] if table.level_source.startswith("automatic") else []
    return [f"<h3>Per vertebral level ({html.escape(table.level_source)})</h3>", *check,
            f"<table><tr><th class='l'>level</th><th>lesions</th><th>lesion volume mm3</th></tr>{rows}</table>"]


def _summary_rows(item: InputFile, image: LoadedImage, table: LesionTable, record: InferenceRecord,
                  model_name: str, model_version: str) -> list[str]:
    stage = f"; lesion model {html.escape(record.lesion_stage)}" if record.lesion_stage else ""
    stage = f"; cord model {html.escape(record.cord_stage)}{stage}" if record.cord_stage else stage
    rule = f" ({html.escape(record.lesion_rule)})" if record.lesion_rule else ""
    contrast = html.escape(image.contrast or "not given")
    return [
        "<table>",
        f"<tr><th class='l'>input</th><td class='l'>{html.escape(display_name(item))}</td></tr>",
        f"<tr><th class='l'>model</th><td class='l'>{html.escape(model_label(model_name))} (lesionseg {html.escape(model_version)}){stage}</td></tr>",
        f"<tr><th class='l'>contrast</th><td class='l'>{contrast}</td></tr>",
        f"<tr><th class='l'>date</th><td class='l'>{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</td></tr>",
        (f"<tr><th class='l'>image grid</th><td class='l'>{' x '.join(map(str, image.geometry.shape))} voxels, "
        f"{' x '.join(f'{s:.2f}' for s in image.geometry.spacing_mm)} mm, {''.join(image.geometry.axcodes)}</td></tr>"),
        *_cord_row(record),
        f"<tr><th class='l'>lesions</th><td class='l'>{table.count}, total {table.total_volume_mm3:.1f} mm3{rule}</td></tr>",
        "</table>",
    ]


def _cord_row(record: InferenceRecord) -> list[str]:
    """The cord's axial coverage and median cross-sectional area (a cascade's), as a summary row."""
    if record.cord_slices is None:
        return []
    area = f"; median cross-sectional area {record.cord_csa_mm2:.0f} mm2" if record.cord_csa_mm2 is not None else ""
    coverage = f"on {record.cord_slices} of {record.axial_slices} axial slices"
    return [f"<tr><th class='l'>cord</th><td class='l'>{coverage}{area}</td></tr>"]


def _viewer(image: LoadedImage, cord: Prediction | None, table: LesionTable, viewer_path: str) -> list[str]:
    """The interactive viewer: the scan and masks as base64 NIfTI, the controls, and the two viewer scripts."""
    from lesionseg.reporting.figures import acquisition_axis
    from lesionseg.reporting.viewer_assets import image_base64, labels_base64

    labels = table.labels if table.labels is not None else np.zeros(image.data.shape, np.uint16)
    scan = {
        "volumes": {"image": image_base64(image.data, image.affine),
                    "cord": labels_base64(cord.mask, image.affine) if cord is not None else None,
                    "lesions": labels_base64(labels, image.affine) if table.count else None},
        "lesions": [{"id": i, "voxel": voxel} for i, voxel in enumerate(lesion_voxels(labels), start=1)],
        "plane": ("sagittal", "coronal", "axial")[acquisition_axis(image.data.shape)],
    }
    toggles = "".join(f"<label><input type='checkbox' id='show-{name}' checked> {name}</label> "
                      for name, present in (("cord", cord is not None), ("lesions", table.count > 0)) if present)
    planes = "".join(f"<button data-plane='{p}'>{p}</button>" for p in ("axial", "sagittal", "coronal", "all"))
    return [
        "<div id='viewer' data-ready='false'>",
        (f"<div class='controls'>{planes} <button id='zoom-in'>zoom +</button><button id='zoom-out'>zoom -</button>"
        f"<button id='zoom-reset'>reset</button> {toggles} window <input id='window-low' size='6'> to "
        "<input id='window-high' size='6'></div>"),
        "<div class='canvas-box'><canvas id='lesionseg-canvas'></canvas></div>",
        ("<div id='location' class='note'></div><div id='viewer-status' class='note'>Mouse wheel: scroll slices; "
        "click: move the cross; right-drag: window; click a row of the table: go to that lesion.</div></div>"),
        f"<script>window.LESIONSEG = {json.dumps(scan)};</script>",
        f"<script src='{viewer_path}/niivue.umd.js'></script><script src='{viewer_path}/viewer.js'></script>",
    ]


def lesion_voxels(labels: np.ndarray) -> list[list[int]]:
    """For each lesion id 1..N, its voxel nearest the lesion's centroid (canonical indices): the viewer's cross
    lands on the lesion even when its centroid does not."""
    voxels = []
    for lesion_id, box in enumerate(ndimage.find_objects(labels), start=1):
        points = np.argwhere(labels[box] == lesion_id) + [s.start for s in box]
        nearest = points[np.argmin(((points - points.mean(axis=0)) ** 2).sum(axis=1))]
        voxels.append([int(v) for v in nearest])
    return voxels


def _level_names(table: LesionTable) -> dict[int, str]:
    """Axial slice -> level name at the middle of each level's run of slices (for the static summary)."""
    if table.slice_levels is None:
        return {}
    per_slice = table.slice_levels.per_slice
    return {int(np.flatnonzero(per_slice == value).mean()): level_name(int(value))
            for value in np.unique(per_slice[per_slice > 0])}


def write_image_report(
    item: InputFile,
    image: LoadedImage,
    cord: Prediction | None,
    table: LesionTable,
    record: InferenceRecord,
    out_dir: Path,
    *,
    model_name: str,
    model_version: str,
) -> Path:
    """Write ``<stem>_report.html`` (the viewer, the tables, the static summary) and ``<stem>_report.png`` (the
    static summary) beside the image's outputs, the viewer's scripts once into ``out_dir``; return the page."""
    from lesionseg.reporting.figures import summary_png  # matplotlib: imported when the first report is drawn
    from lesionseg.reporting.viewer_assets import install_viewer

    page = output_path(out_dir, item, REPORT_SUFFIX, ".html")
    viewer_path = Path(os.path.relpath(install_viewer(out_dir), page.parent)).as_posix()
    labels = table.labels if table.labels is not None else np.zeros(image.data.shape, np.uint16)
    png = summary_png(image.data, cord.mask if cord is not None else None, labels, image.spacing_mm,
                      level_names=_level_names(table))
    atomic_write(output_path(out_dir, item, REPORT_SUFFIX, ".png"), lambda temporary: temporary.write_bytes(png))
    body = [f"<h1>Spinal-cord lesion segmentation: {html.escape(display_name(item))}</h1>"]
    body += [f"<p class='warn'>{html.escape(record.warning)}</p>"] if record.warning else []
    body += _summary_rows(item, image, table, record, model_name, model_version)
    body += _viewer(image, cord, table, viewer_path)
    body += ["<h2>Lesions, head to foot</h2>",
             _lesion_rows(table) if table.count else "<p>No lesion found.</p>", *_level_rows(table),
             "<p class='note'>Definitions: docs/lesion-analysis.md of lesionseg.</p>",
             "<h2>Summary (static, for PDFs and PACS)</h2>",
             f"<img class='summary' alt='summary' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"]
    return atomic_write_text(page, _page(f"lesionseg: {display_name(item)}", body))


class ReportWriter:
    """``<stem>_report.html``: one self-contained page per scan (a writer of :mod:`lesionseg.outputs`)."""

    def __init__(self, model_name: str, model_version: str) -> None:
        self.model_name = model_name
        self.model_version = model_version

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(REPORT_SUFFIX, ".html"), (REPORT_SUFFIX, ".png")]

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return ""

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        write_image_report(scan.item, scan.image, scan.segmentation.cord, scan.table,
                           scan.record, out_dir, model_name=self.model_name, model_version=self.model_version)


def report_of(record: InferenceRecord) -> Path | None:
    """The report beside a scan's lesion mask (this run's or, for a skipped scan, the earlier run's), if any."""
    suffix, output = f"_{LESION_OUTPUT_SUFFIX}.nii.gz", Path(record.output)
    stem = record.output[: -len(suffix)] if record.output.endswith(suffix) else None
    if stem is None and (bids_stem := source_stem(output.name)) is not None:  # a BIDS derivative's lesion mask
        stem = str(output.with_name(bids_stem))
    report = Path(f"{stem}_{REPORT_SUFFIX}.html") if stem is not None else None
    return report if report is not None and report.is_file() else None


def write_index(records: Sequence[InferenceRecord], out_dir: Path, name: str = "index.html") -> Path:
    """Write ``index.html`` (or ``name``): every input with its status, lesion count and volume, linking to its
    report; segmented scans first, by lesion load (volume, then count) from the highest."""
    records = sorted(records, key=lambda r: (r.status == "failed", -r.lesion_volume_mm3, -r.lesions))
    counts = {status: sum(1 for r in records if r.status == status) for status in ("ok", "failed", "skipped")}
    body = [
        "<h1>lesionseg batch</h1>",
        (f"<p>{len(records)} input(s): {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</p>"),
        ("<table><tr><th class='l'>input</th><th class='l'>status</th><th>lesions</th><th>volume mm3</th>"
        "<th>seconds</th><th class='l'>report / reason</th></tr>"),
    ]
    for record in records:
        report = report_of(record)
        if report is not None:
            link = f"<a href='{html.escape(os.path.relpath(report, out_dir))}'>report</a>"
        else:
            link = html.escape(record.error or record.warning)
        body.append(
            f"<tr><td class='l'>{html.escape(Path(record.input).name)}</td><td class='l'>{record.status}</td>"
            f"<td>{record.lesions}</td><td>{record.lesion_volume_mm3:.1f}</td><td>{record.seconds:.2f}</td>"
            f"<td class='l'>{link}</td></tr>"
        )
    body.append("</table>")
    return atomic_write_text(out_dir / name, _page("lesionseg batch", body))
