"""Self-contained HTML reports of inference: one page per image and an index page per batch.

Each image page shows the input, the model (name, version), the date, the lesion table with totals, and a
sagittal and an axial overlay at every lesion (matplotlib PNGs embedded as data URIs, so the page opens
offline). Every page says "Research use, not a diagnostic device". Patient identifiers are not shown.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lesionseg.constants import LESION_OUTPUT_SUFFIX
from lesionseg.inference.lesions import LesionTable
from lesionseg.inference.predictor import Prediction
from lesionseg.inference.segmenter import Segmentation
from lesionseg.io.atomic import atomic_write_text
from lesionseg.io.inputs import InputFile, output_path
from lesionseg.io.nifti import LoadedImage
from lesionseg.outputs.base import ScanResult
from lesionseg.outputs.summary import InferenceRecord

DISCLAIMER = "Research use, not a diagnostic device. Results must be reviewed by a qualified reader."
REPORT_SUFFIX = "report"
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f2f2f2}
td.l,th.l{text-align:left} .warn{background:#fff4e0;border:1px solid #f0c070;padding:8px;margin:1em 0}
.lesion{display:inline-block;border:1px solid #ddd;margin:4px;padding:4px;font-size:12px;vertical-align:top}
.note{color:#555;font-size:12px}
"""
MAX_LESION_FIGURES = 12


def _page(title: str, body: list[str]) -> str:
    head = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
    return "\n".join([head, *body, f"<p class='warn'>{html.escape(DISCLAIMER)}</p></body></html>"])


def _voxel(world: Sequence[float], affine: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int]:
    ijk = np.rint(np.linalg.solve(affine[:3, :3], np.asarray(world, dtype=float) - affine[:3, 3])).astype(int)
    return tuple(int(np.clip(v, 0, s - 1)) for v, s in zip(ijk, shape, strict=True))  # type: ignore[return-value]


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _lesion_rows(table: LesionTable) -> str:
    """The lesion table (head to foot) as HTML rows."""
    header = ("<table><tr><th>#</th><th>level</th><th>volume mm3</th><th>length mm</th><th>AP x LR mm</th>"
              "<th>max diameter mm</th><th>max axial damage</th><th>dorsal / ventral bridge mm</th>"
              "<th class='l'>position</th><th class='l'>centroid RAS mm</th><th>max probability</th></tr>")
    rows = [
        f"<tr><td>{row.lesion_id}</td><td>{row.vertebral_level or '-'}</td><td>{row.volume_mm3:.1f}</td>"
        f"<td>{row.length_si_mm:.1f}</td><td>{row.width_ap_mm:.1f} x {row.width_lr_mm:.1f}</td>"
        f"<td>{row.max_equivalent_diameter_mm:.1f}</td><td>{_number(row.max_axial_damage_ratio, 2)}</td>"
        f"<td>{_number(row.dorsal_bridge_mm)} / {_number(row.ventral_bridge_mm)}</td>"
        f"<td class='l'>{html.escape(' '.join(filter(None, (row.position, row.side))) or '-')}</td>"
        f"<td class='l'>{', '.join(f'{v:.1f}' for v in row.centroid_ras_mm)}</td><td>{row.max_probability:.2f}</td></tr>"
        for row in table.lesions
    ]
    return "\n".join([header, *rows])


def write_image_report(
    item: InputFile,
    image: LoadedImage,
    lesion: Prediction,
    cord: Prediction | None,
    table: LesionTable,
    record: InferenceRecord,
    out_dir: Path,
    *,
    model_name: str,
    model_version: str,
) -> Path:
    """Write ``<stem>_report.html`` beside the image's outputs and return its path."""
    from lesionseg.reporting.figures import overlay_slice  # matplotlib: imported when the first report is drawn

    masks = {"lesion": (lesion.mask, "red")}
    if cord is not None:
        masks["cord"] = (cord.mask, "deepskyblue")
    body = [
        f"<h1>Spinal-cord lesion segmentation: {html.escape(item.stem)}</h1>",
        "<table>",
        f"<tr><th class='l'>input</th><td class='l'>{html.escape(item.label)}</td></tr>",
        f"<tr><th class='l'>model</th><td class='l'>{html.escape(model_name)} (lesionseg {html.escape(model_version)})"
        + (f"; lesion model {html.escape(record.lesion_stage)}" if record.lesion_stage else "") + "</td></tr>",
        f"<tr><th class='l'>date</th><td class='l'>{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</td></tr>",
        f"<tr><th class='l'>image grid</th><td class='l'>{' x '.join(map(str, image.geometry.shape))} voxels, "
        f"{' x '.join(f'{s:.2f}' for s in image.geometry.spacing_mm)} mm, {''.join(image.geometry.axcodes)}</td></tr>",
        f"<tr><th class='l'>lesions</th><td class='l'>{table.count}, total {table.total_volume_mm3:.1f} mm3"
        + (f" ({html.escape(record.lesion_rule)})" if record.lesion_rule else "") + "</td></tr>",
        "</table>",
    ]
    if record.warning:
        body.append(f"<p class='warn'>{html.escape(record.warning)}</p>")
    body.append("<h2>Lesions</h2>")
    if table.count:
        body.append(_lesion_rows(table))
        body.append("</table><h2>Views at each lesion</h2><p class='note'>red: lesions"
                    + (", blue: cord" if cord is not None else "") + "</p>")
        for row in table.lesions[:MAX_LESION_FIGURES]:
            x, _, z = _voxel(row.centroid_ras_mm, image.affine, image.data.shape)
            sagittal = overlay_slice(image.data, masks, axis=0, index=x, spacing_mm=image.spacing_mm, title=f"lesion {row.lesion_id}: sagittal")
            axial = overlay_slice(image.data, masks, axis=2, index=z, spacing_mm=image.spacing_mm, title=f"lesion {row.lesion_id}: axial")
            body.append(f"<div class='lesion'><img src='{sagittal}'><img src='{axial}'></div>")
        if table.count > MAX_LESION_FIGURES:
            body.append(f"<p class='note'>{table.count - MAX_LESION_FIGURES} more lesion(s) in the table, not pictured.</p>")
    else:
        body.append("<p>No lesion found.</p>")
        middle = image.data.shape[0] // 2
        body.append(f"<img src='{overlay_slice(image.data, masks, axis=0, index=middle, spacing_mm=image.spacing_mm, title='mid-sagittal')}'>")
    return atomic_write_text(output_path(out_dir, item, REPORT_SUFFIX, ".html"), _page(f"lesionseg: {item.stem}", body))


class ReportWriter:
    """``<stem>_report.html``: one self-contained page per scan (a writer of :mod:`lesionseg.outputs`)."""

    def __init__(self, model_name: str, model_version: str) -> None:
        self.model_name = model_name
        self.model_version = model_version

    def names(self, item: InputFile, segments_cord: bool) -> list[tuple[str, str]]:
        return [(REPORT_SUFFIX, ".html")]

    def skip_reason(self, item: InputFile, segmentation: Segmentation) -> str:
        return ""

    def write(self, scan: ScanResult, out_dir: Path) -> None:
        write_image_report(scan.item, scan.image, scan.segmentation.lesion, scan.segmentation.cord, scan.table,
                           scan.record, out_dir, model_name=self.model_name, model_version=self.model_version)


def report_of(record: InferenceRecord) -> Path | None:
    """The report beside a scan's lesion mask (this run's or, for a skipped scan, the earlier run's), if any."""
    suffix = f"_{LESION_OUTPUT_SUFFIX}.nii.gz"
    if not record.output.endswith(suffix):
        return None
    report = Path(record.output[: -len(suffix)] + f"_{REPORT_SUFFIX}.html")
    return report if report.is_file() else None


def write_index(records: Sequence[InferenceRecord], out_dir: Path, name: str = "index.html") -> Path:
    """Write ``index.html`` (or ``name``): every input with its status, lesion count and volume, linking to its
    report."""
    counts = {status: sum(1 for r in records if r.status == status) for status in ("ok", "failed", "skipped")}
    body = [
        "<h1>lesionseg batch</h1>",
        f"<p>{len(records)} input(s): {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</p>",
        "<table><tr><th class='l'>input</th><th class='l'>status</th><th>lesions</th><th>volume mm3</th>"
        "<th>seconds</th><th class='l'>report / reason</th></tr>",
    ]
    for record in records:
        report = report_of(record)
        if report is not None:
            link = f"<a href='{html.escape(os.path.relpath(report, out_dir))}'>report</a>"
        else:
            link = html.escape(record.error or record.warning)
        body.append(
            f"<tr><td class='l'>{html.escape(record.input)}</td><td class='l'>{record.status}</td>"
            f"<td>{record.lesions}</td><td>{record.lesion_volume_mm3:.1f}</td><td>{record.seconds:.2f}</td>"
            f"<td class='l'>{link}</td></tr>"
        )
    body.append("</table>")
    return atomic_write_text(out_dir / name, _page("lesionseg batch", body))
