"""Figures for reports: matplotlib (Agg) rendered to PNG and embedded as base64, so pages open offline."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage


def figure_to_data_uri(figure: plt.Figure) -> str:
    """PNG data URI of a figure (the figure is closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def overlay_slice(
    image: np.ndarray,
    masks: dict[str, tuple[np.ndarray, str]],
    *,
    axis: int,
    index: int,
    spacing_mm: tuple[float, float, float],
    title: str = "",
) -> str:
    """A slice of a RAS volume with mask contours, as a data URI.

    Args:
        image: RAS array (X, Y, Z).
        masks: name -> (RAS mask, colour); drawn as contours.
        axis: 0 sagittal, 1 coronal, 2 axial.
        index: slice index along ``axis``.
        spacing_mm: voxel size, for the aspect ratio.
    """
    def cut(volume: np.ndarray) -> np.ndarray:
        return np.take(volume, index, axis=axis).T  # rows: second remaining axis, so superior/anterior is up

    remaining = [a for a in range(3) if a != axis]
    aspect = spacing_mm[remaining[1]] / spacing_mm[remaining[0]]
    figure, ax = plt.subplots(figsize=(3.2, 3.2))
    picture = cut(image)
    low, high = np.percentile(picture, [1, 99]) if picture.size else (0, 1)
    ax.imshow(picture, cmap="gray", origin="lower", aspect=aspect, vmin=low, vmax=high if high > low else low + 1)
    for name, (mask, colour) in masks.items():
        section = cut(mask).astype(float)
        if section.any() and min(section.shape) >= 2:
            ax.contour(section, levels=[0.5], colors=colour, linewidths=1.0)
        elif section.any():  # a one-voxel-thin section has no contour: its voxels are marked
            rows, columns = np.nonzero(section)
            ax.plot(columns, rows, "s", color=colour, markersize=2)
        ax.plot([], [], color=colour, label=name)
    if masks:
        ax.legend(loc="lower right", fontsize=6, framealpha=0.6)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    return figure_to_data_uri(figure)


def lesion_centre(mask: np.ndarray) -> tuple[int, int, int] | None:
    """Voxel at the centroid of a mask's foreground (rounded), or None when empty."""
    points = np.argwhere(mask > 0)
    if not len(points):
        return None
    return tuple(int(v) for v in np.rint(points.mean(axis=0)))  # type: ignore[return-value]


def acquisition_axis(shape: tuple[int, int, int]) -> int:
    """The canonical axis of the acquisition plane's normal: the one with the fewest slices (an axial stack's
    ``Z``, a sagittal series' ``X``)."""
    return int(np.argmin(shape))


def montage(
    image: np.ndarray,
    masks: dict[str, tuple[np.ndarray, str]],
    *,
    axis: int,
    spacing_mm: tuple[float, float, float],
    title: str = "",
    columns: int = 8,
    panel_inches: float = 2.2,
) -> plt.Figure:
    """Every slice of a RAS volume along ``axis`` with mask contours, in a grid (anterior or superior up).

    Args:
        image: RAS array (X, Y, Z).
        masks: name -> (RAS mask of the same shape, colour), drawn as contours.
        axis: 0 sagittal, 1 coronal, 2 axial slices.
        spacing_mm: voxel size, for the aspect ratio.

    Returns:
        The figure (save it with ``savefig``; close it with ``plt.close``).
    """
    count = image.shape[axis]
    rows = -(-count // columns)
    remaining = [a for a in range(3) if a != axis]
    aspect = spacing_mm[remaining[1]] / spacing_mm[remaining[0]]
    low, high = np.percentile(image, [1, 99.5]) if image.size else (0.0, 1.0)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * panel_inches, rows * panel_inches), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= count:
            continue
        ax.imshow(np.take(image, index, axis=axis).T, cmap="gray", origin="lower", aspect=aspect,
                  vmin=low, vmax=high if high > low else low + 1)
        for mask, colour in masks.values():
            section = np.take(mask, index, axis=axis).T.astype(float)
            if section.any():
                ax.contour(section, levels=[0.5], colors=colour, linewidths=0.8)
        ax.set_title(str(index), fontsize=7)
    legend = ", ".join(f"{name}: {colour}" for name, (_, colour) in masks.items())
    figure.suptitle(f"{title}\n{legend}", fontsize=9)
    figure.tight_layout()
    return figure


def _lesion_colours(count: int) -> list[str]:
    palette = ["#ff2828", "#ff8c00", "#ff00c8", "#ffe600", "#00e678", "#a050ff"]
    return [palette[i % len(palette)] for i in range(count)]


def _letters(ax: plt.Axes, left: str, right: str, top: str, bottom: str) -> None:
    style = {"color": "yellow", "fontsize": 8, "transform": ax.transAxes, "ha": "center", "va": "center"}
    for text, x, y in ((left, 0.03, 0.5), (right, 0.97, 0.5), (top, 0.5, 0.97), (bottom, 0.5, 0.03)):
        ax.text(x, y, text, **style)


def _draw(ax: plt.Axes, picture: np.ndarray, aspect: float, window: tuple[float, float]) -> None:
    ax.imshow(picture, cmap="gray", origin="lower", aspect=aspect, vmin=window[0], vmax=window[1])
    ax.set_axis_off()


def _contours(ax: plt.Axes, cord: np.ndarray | None, labels: np.ndarray, ids: list[int], colours: list[str],
              number: bool) -> None:
    """Cord and lesion contours of one 2D section (rows, columns), lesions numbered beside their centre."""
    if cord is not None and cord.any() and min(cord.shape) >= 2:
        ax.contour(cord.astype(float), levels=[0.5], colors="deepskyblue", linewidths=0.8)
    for lesion_id, colour in zip(ids, colours, strict=True):
        section = labels == lesion_id
        if not section.any():
            continue
        if min(section.shape) >= 2:
            ax.contour(section.astype(float), levels=[0.5], colors=colour, linewidths=1.0)
        if number:
            rows, columns = np.nonzero(section)
            ax.text(columns.max() + 2, rows.mean(), str(lesion_id), color=colour, fontsize=8, fontweight="bold")


def summary_png(
    image: np.ndarray,
    cord: np.ndarray | None,
    labels: np.ndarray,
    spacing_mm: tuple[float, float, float],
    *,
    level_names: dict[int, str] | None = None,
    max_axial: int = 8,
) -> bytes:
    """The report's static summary (for PDFs and PACS) as PNG bytes: a sagittal section through the cord with
    cord and numbered lesion contours and, beside it, the vertebral levels (``level_names``: axial slice index ->
    level at that slice); then an axial section through each lesion (up to ``max_axial``). Radiological
    convention: on axial views the patient's right is on the viewer's left; sagittal views have anterior on the
    left; orientation letters on every view.

    Args:
        image, cord, labels: canonical (RAS) arrays of one shape; ``labels`` holds lesion ids 1..N.
    """
    count = int(labels.max(initial=0))
    ids, colours = list(range(1, count + 1)), _lesion_colours(count)
    window = tuple(np.percentile(image, [1, 99.5])) if image.size else (0.0, 1.0)
    window = (window[0], window[1] if window[1] > window[0] else window[0] + 1)
    centres = [np.round(c).astype(int) for c in ndimage.center_of_mass(labels > 0, labels, ids[:max_axial])]
    x_mid = int(np.argwhere(cord).mean(axis=0)[0].round()) if cord is not None and cord.any() else image.shape[0] // 2
    axial_count = max(1, len(centres))
    figure, axes = plt.subplots(1, 1 + axial_count, figsize=(3.0 * (1 + axial_count), 4.0), squeeze=False)
    sagittal = axes[0, 0]
    _draw(sagittal, image[x_mid].T[:, ::-1], spacing_mm[2] / spacing_mm[1], window)
    _contours(sagittal, None if cord is None else cord[x_mid].T[:, ::-1], labels[x_mid].T[:, ::-1], ids, colours, True)
    _letters(sagittal, "A", "P", "S", "I")
    sagittal.set_title("sagittal, through the cord", fontsize=8)
    for z, name in (level_names or {}).items():
        sagittal.text(1.02, (z + 0.5) / image.shape[2], name, transform=sagittal.transAxes, fontsize=7, va="center")
    z_slices = [int(c[2]) for c in centres] or [int(np.argwhere(cord)[:, 2].mean()) if cord is not None and cord.any()
                                               else image.shape[2] // 2]
    for ax, z, lesion_id in zip(axes[0, 1:], z_slices, ids or [None], strict=False):
        _draw(ax, image[:, :, z].T[:, ::-1], spacing_mm[1] / spacing_mm[0], window)
        _contours(ax, None if cord is None else cord[:, :, z].T[:, ::-1], labels[:, :, z].T[:, ::-1], ids, colours, True)
        _letters(ax, "R", "L", "A", "P")
        ax.set_title(f"axial, lesion {lesion_id}" if lesion_id else "axial, mid-cord", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    return buffer.getvalue()
