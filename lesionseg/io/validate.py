"""Checks on images and labels, each raising :class:`~lesionseg.errors.InputError` with a one-line message
that names the file and the cause.

These run on every load, for training and inference alike, so a bad file is reported before any work.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from lesionseg.errors import InputError

#: Voxel-size tolerance (mm) and affine tolerance used to decide whether two grids are the same.
GRID_ATOL_MM = 1e-3
#: Voxel sizes an MRI scan can have (mm): below, the header is almost surely in metres or corrupt; above, in
#: another unit (or a single thick slab nothing can be segmented in).
SPACING_RANGE_MM = (0.05, 20.0)
#: Intensities are rescaled (by a power of two, which is exact and changes no normalised value) into this range
#: of largest magnitudes, so that no finite input overflows float32 arithmetic (squares, sums) downstream.
SAFE_MAGNITUDE = (1e-3, 1e6)


def one_line(error: BaseException) -> str:
    """The first line of an exception's message, or its class name when it has none."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def check_header(path: Path, image: nib.spatialimages.SpatialImage) -> None:
    """Refuse voxel types and geometries that no segmentation can use.

    Raises:
        InputError: RGB/structured or complex voxels, zero or negative spacing, singular affine, voxel sizes
            outside :data:`SPACING_RANGE_MM`.
    """
    dtype = np.dtype(image.get_data_dtype())
    if dtype.fields is not None:
        raise InputError(f"{path}: RGB/vector voxel type {dtype}; expected one scalar per voxel")
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"{path}: complex voxel type {dtype}; expected real values (magnitude or PSIR real)")
    zooms = image.header.get_zooms()[:3]
    if len(zooms) == 3 and min(zooms) <= 0:
        raise InputError(f"{path}: voxel spacing {tuple(float(z) for z in zooms)} mm has a zero or negative value")
    affine = np.asarray(image.affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        raise InputError(f"{path}: affine has NaN or inf values")
    column_norms = np.linalg.norm(affine[:3, :3], axis=0)
    if min(column_norms) <= 0 or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{path}: affine is singular (zero voxel size along an axis)")
    check_spacing_range(path, tuple(column_norms))


def check_spacing_range(path: Path, spacing_mm: tuple[float, ...]) -> None:
    """Raises InputError when a voxel size is outside :data:`SPACING_RANGE_MM` (checked before any voxel is
    read, so a header in centimetres or metres never reaches resampling)."""
    low, high = SPACING_RANGE_MM
    if any(not low <= float(v) <= high for v in spacing_mm):
        shown = " x ".join(f"{float(v):g}" for v in spacing_mm)
        raise InputError(
            f"{path}: voxel size {shown} mm is outside {low:g}-{high:g} mm, implausible for MRI "
            "(header in cm or m?); fix the header's pixdim"
        )


def check_orientation(path: Path, header: nib.Nifti1Header, *, accept: bool) -> str:
    """The header must say how its axes lie in the body: qform or sform code > 0.

    Returns:
        "" when it does; a warning when it does not and ``accept`` is set (the axes are then taken as RAS).

    Raises:
        InputError: no orientation information and ``accept`` is not set.
    """
    if int(header["qform_code"]) > 0 or int(header["sform_code"]) > 0:
        return ""
    message = "no orientation in the header (qform and sform codes are 0), so left/right and head/foot are unknown"
    if not accept:
        raise InputError(f"{path}: {message}; fix the header (e.g. fslorient, sct_image -set-qform-to-sform) or "
                         "accept the voxel axes as RAS with --accept-no-orientation")
    return f"{message}: the voxel axes were taken as RAS (--accept-no-orientation)"


def safe_intensities(data: np.ndarray) -> np.ndarray:
    """``data`` as float32 with its largest magnitude brought into :data:`SAFE_MAGNITUDE` by a power of two.

    Extreme but finite inputs (1e38 in float32, 1e300 in float64, 1e-30) would otherwise overflow to inf or
    underflow to 0 in float32 arithmetic; the scale is a power of two, so relative values are exact and every
    normalisation (z-score, percentiles, signed) gives the same result. NaN and inf are left for
    :func:`check_finite` to refuse.
    """
    if not np.issubdtype(data.dtype, np.number) or data.size == 0:
        return data.astype(np.float32, copy=False)
    finite = np.abs(data[np.isfinite(data)]) if np.issubdtype(data.dtype, np.floating) else np.abs(data)
    largest = float(finite.max(initial=0.0))
    low, high = SAFE_MAGNITUDE
    if largest == 0.0 or low <= largest <= high:
        return data.astype(np.float32, copy=False)
    exponent = int(np.floor(np.log2(largest))) - int(np.floor(np.log2(1e3)))
    return np.ldexp(data.astype(np.float64), -exponent).astype(np.float32)


def check_raw_pixdim(path: Path, header: nib.Nifti1Header) -> None:
    """Raises InputError when the stored voxel sizes (pixdim[1:4]) are zero or negative."""
    dims = int(header["dim"][0])
    pixdim = [float(v) for v in header["pixdim"][1 : 1 + min(3, max(dims, 0))]]
    if pixdim and min(pixdim) <= 0:
        raise InputError(f"{path}: voxel spacing {tuple(pixdim)} mm has a zero or negative value")


def check_size(path: Path, shape: tuple[int, ...], max_voxels: int) -> None:
    """Raises InputError when the header announces more than ``max_voxels`` voxels (checked before reading)."""
    voxels = int(np.prod([int(s) for s in shape], dtype=np.float64)) if shape else 0
    if voxels > max_voxels:
        raise InputError(
            f"{path}: {voxels:,} voxels ({' x '.join(map(str, shape))}) exceed the limit of {max_voxels:,}; "
            "raise it with --max-voxels if the machine has the memory"
        )


def squeeze_to_3d(path: Path, data: np.ndarray) -> np.ndarray:
    """Return a 3D view of ``data``; a 4D (or 5D) image with a single volume is accepted.

    Raises:
        InputError: 2D images and images with more than one volume.
    """
    if data.ndim < 3:
        raise InputError(f"{path}: {data.ndim}D image of shape {data.shape}; expected one 3D volume")
    if data.ndim > 3:
        extra = data.shape[3:]
        if int(np.prod(extra)) != 1:
            raise InputError(
                f"{path}: {data.ndim}D image with {int(np.prod(extra))} volumes (shape {data.shape}); "
                "expected one 3D volume"
            )
        data = data.reshape(data.shape[:3])
    return data


def check_finite(path: Path, data: np.ndarray) -> None:
    """Raises InputError when any voxel is NaN or infinite."""
    if np.issubdtype(data.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise InputError(f"{path}: {bad} voxel(s) are NaN or infinite")


def check_not_constant(path: Path, data: np.ndarray) -> None:
    """Raises InputError when every voxel has the same value (an empty or blank image)."""
    if data.size == 0 or float(data.min()) == float(data.max()):
        value = float(data.flat[0]) if data.size else float("nan")
        raise InputError(f"{path}: image is constant (every voxel is {value:g}); nothing to segment")


def binarize_label(path: Path, data: np.ndarray) -> np.ndarray:
    """Return ``data`` as uint8 0/1, refusing any other value.

    Raises:
        InputError: values other than 0 and 1 (e.g. a multi-class map or a soft mask).
    """
    values = np.unique(data)
    allowed = np.isclose(values[:, None], np.array([0.0, 1.0])[None, :], atol=1e-3).any(axis=1)
    if not np.all(allowed):
        shown = ", ".join(f"{v:g}" for v in values[~allowed][:5])
        raise InputError(f"{path}: label has values other than 0 and 1 ({shown}); expected a binary mask")
    return (data > 0.5).astype(np.uint8)


def check_same_grid(
    image_path: Path,
    image_shape: tuple[int, ...],
    image_affine: np.ndarray,
    label_path: Path,
    label_shape: tuple[int, ...],
    label_affine: np.ndarray,
) -> None:
    """Raises InputError when a label is not on its image's voxel grid (shape and affine)."""
    if tuple(image_shape) != tuple(label_shape):
        raise InputError(
            f"{label_path}: label shape {tuple(label_shape)} differs from image {image_path.name} "
            f"shape {tuple(image_shape)}"
        )
    if not np.allclose(image_affine, label_affine, atol=GRID_ATOL_MM):
        worst = float(np.abs(np.asarray(image_affine) - np.asarray(label_affine)).max())
        raise InputError(
            f"{label_path}: label affine differs from image {image_path.name} affine (by up to {worst:.3g} mm)"
        )
