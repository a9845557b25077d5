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


def one_line(error: BaseException) -> str:
    """The first line of an exception's message, or its class name when it has none."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def check_header(path: Path, image: nib.spatialimages.SpatialImage) -> None:
    """Refuse voxel types and geometries that no segmentation can use.

    Raises:
        InputError: RGB/structured or complex voxels, zero or negative spacing, singular affine.
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
