"""Figures for reports: matplotlib (Agg) rendered to PNG and embedded as base64, so pages open offline."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
