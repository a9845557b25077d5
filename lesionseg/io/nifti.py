"""NIfTI in any orientation, spacing and dtype; canonical (RAS) arrays for the models; masks back out in the
input's exact native grid.

The round trip is lossless: :meth:`NativeGeometry.to_canonical` only permutes and flips axes (nibabel's
orientation tools, no interpolation), and :meth:`NativeGeometry.to_native` undoes it. Masks are written with
a copy of the input header, so shape, affine and qform/sform codes are the input's.

Example::

    scan = load_image("sub-01_T2w.nii.gz")          # scan.data is RAS, float32
    mask = model_output > 0.5                        # same RAS grid as scan.data
    save_mask(mask, scan.geometry, "sub-01_T2w_lesionseg.nii.gz")
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

from lesionseg.constants import ANATOMICAL_SUFFIXES, CANONICAL_AXCODES, NIFTI_EXTENSIONS, SUFFIX_ALIASES
from lesionseg.errors import InputError
from lesionseg.io import validate
from lesionseg.io.atomic import atomic_write

_CANONICAL_ORNT = axcodes2ornt(CANONICAL_AXCODES)


def contrast_from_name(path: str | Path) -> str | None:
    """The contrast a file name declares by its BIDS suffix (``..._T2w.nii.gz`` -> ``T2w``; the deprecated
    ``_T2star`` -> ``T2starw``), else None."""
    suffix = strip_nifti_extension(Path(path)).rsplit("_", 1)[-1]
    return canonical_contrast(suffix) if suffix in ANATOMICAL_SUFFIXES else None


def canonical_contrast(contrast: str) -> str:
    """A contrast's current BIDS name (``T2star`` -> ``T2starw``; any other name as it is)."""
    return SUFFIX_ALIASES.get(contrast, contrast)


def strip_nifti_extension(path: str | Path) -> str:
    """``"sub-01_T2w.nii.gz"`` -> ``"sub-01_T2w"``."""
    name = Path(path).name
    for extension in NIFTI_EXTENSIONS:
        if name.endswith(extension):
            return name[: -len(extension)]
    return name


def is_nifti(path: str | Path) -> bool:
    """True when the file name ends in .nii or .nii.gz."""
    return Path(path).name.endswith(NIFTI_EXTENSIONS)


@dataclass(frozen=True, eq=False)
class NativeGeometry:
    """The voxel grid of an input file: what an output must match.

    Attributes:
        path: the file it was read from.
        shape: native 3D shape (voxels).
        affine: native 4x4 voxel-to-world (RAS mm) affine.
        header: a copy of the input header; outputs are written with it.
    """

    path: Path
    shape: tuple[int, int, int]
    affine: np.ndarray
    header: nib.Nifti1Header

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """Native axis codes, e.g. ``("P", "S", "R")``."""
        return tuple(nib.aff2axcodes(self.affine))  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Native voxel size along the three array axes (mm)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def _to_canonical_ornt(self) -> np.ndarray:
        return ornt_transform(io_orientation(self.affine), _CANONICAL_ORNT)

    @property
    def canonical_affine(self) -> np.ndarray:
        """Affine of the canonical (RAS) array; it maps to the same world points as the native one."""
        return self.affine @ inv_ornt_aff(self._to_canonical_ornt, self.shape)

    @property
    def canonical_shape(self) -> tuple[int, int, int]:
        """Shape of the canonical (RAS) array."""
        order = self._to_canonical_ornt[:, 0].astype(int)
        shape = [0, 0, 0]
        for native_axis, canonical_axis in enumerate(order):
            shape[canonical_axis] = self.shape[native_axis]
        return tuple(shape)  # type: ignore[return-value]

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """Permute/flip a native-grid array (3D, or with trailing channels) to RAS."""
        return np.ascontiguousarray(apply_orientation(array, self._to_canonical_ornt))

    def to_native(self, array: np.ndarray) -> np.ndarray:
        """Permute/flip a canonical (RAS) array back onto the native grid.

        Raises:
            ValueError: when ``array`` is not on the canonical grid of this geometry.
        """
        if tuple(array.shape[:3]) != self.canonical_shape:
            raise ValueError(f"array shape {array.shape[:3]} is not the canonical shape {self.canonical_shape}")
        back = ornt_transform(_CANONICAL_ORNT, io_orientation(self.affine))
        return np.ascontiguousarray(apply_orientation(array, back))


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A validated volume in canonical (RAS) orientation plus the native grid it came from.

    Attributes:
        data: RAS array, float32 for images, uint8 (0/1) for labels; shape ``geometry.canonical_shape``.
        affine: RAS affine of ``data`` (world mm).
        geometry: the native grid, for writing outputs back.
        contrast: the contrast the file name declares (BIDS suffix, e.g. ``PSIR``), or None.
    """

    data: np.ndarray
    affine: np.ndarray
    geometry: NativeGeometry
    contrast: str | None = None
    #: what was accepted with a caveat (e.g. no orientation in the header), for the run's summary
    warnings: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return self.geometry.path

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along the canonical axes (mm)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


def _raw_header(path: Path, header_class: type) -> nib.Nifti1Header:
    """The header as stored: nibabel's loader silently "fixes" zero or negative voxel sizes."""
    with nib.openers.ImageOpener(path) as handle:
        return header_class.from_fileobj(handle, check=False)


#: Largest image accepted by default (voxels): 512 x 512 x 1024, about 1 GiB as float32.
MAX_VOXELS = 512 * 512 * 1024


def _read(path: Path, max_voxels: int = MAX_VOXELS) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Open ``path`` and read its voxels after every check that needs only the header."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a NIfTI file")
    if not is_nifti(path):
        raise InputError(f"{path}: not a NIfTI file name (expected .nii or .nii.gz)")
    try:
        image = nib.load(path)
    except PermissionError:
        raise InputError(f"{path}: cannot read (permission denied)") from None
    except Exception as error:  # nibabel raises many types for bad files
        raise InputError(f"{path}: not a readable NIfTI file ({validate.one_line(error)})") from None
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"{path}: not a NIfTI-1/2 image ({type(image).__name__})")
    validate.check_raw_pixdim(path, _raw_header(path, type(image.header)))
    validate.check_header(path, image)
    validate.check_size(path, image.shape, max_voxels)
    try:
        data = np.asanyarray(image.dataobj)
    except PermissionError:
        raise InputError(f"{path}: cannot read (permission denied)") from None
    except Exception as error:  # truncated gzip, short file, ...
        raise InputError(f"{path}: truncated or corrupt voxel data ({validate.one_line(error)})") from None
    return image, data


def load_image(
    path: str | Path,
    *,
    kind: Literal["image", "label"] = "image",
    max_voxels: int = MAX_VOXELS,
    accept_no_orientation: bool = False,
) -> LoadedImage:
    """Load and validate a 3D NIfTI, returning it in canonical RAS orientation.

    Args:
        path: a .nii or .nii.gz file of any orientation, spacing and numeric dtype.
        kind: ``"image"`` (float32, must not be constant) or ``"label"`` (uint8, values must be 0/1).
        max_voxels: larger images are refused from their header, before any voxel is read.
        accept_no_orientation: take an image whose header has no orientation (qform and sform codes 0) with its
            voxel axes as RAS, with a warning, instead of refusing it. Labels are checked against their image's
            grid instead.

    Raises:
        InputError: unreadable or truncated file, not 3D, NaN/inf voxels, zero/negative or implausible spacing
            (outside 0.05-20 mm), no orientation, constant image, or label values other than 0/1.
    """
    path = Path(path)
    image, data = _read(path, max_voxels)
    return _oriented(path, image, data, kind=kind, accept_no_orientation=accept_no_orientation)


def _oriented(
    path: Path, image: nib.Nifti1Image, data: np.ndarray, *, kind: Literal["image", "label"], accept_no_orientation: bool
) -> LoadedImage:
    """:func:`validated_image`, an image's header first required to give its orientation (or a warning)."""
    warning = validate.check_orientation(path, image.header, accept=accept_no_orientation) if kind == "image" else ""
    loaded = validated_image(path, image, data, kind=kind)
    return replace(loaded, warnings=(warning,)) if warning else loaded


def validated_image(
    path: Path, image: nib.Nifti1Image, data: np.ndarray, *, kind: Literal["image", "label"] = "image"
) -> LoadedImage:
    """Validate voxel data read from ``path`` (a NIfTI file, or a DICOM series turned into ``image``) and
    return it in canonical RAS orientation. See :func:`load_image` for what is checked."""
    data = validate.squeeze_to_3d(path, data)
    if kind == "label":
        validate.check_finite(path, data.astype(np.float32, copy=False))
        data = validate.binarize_label(path, data)
    else:
        data = validate.safe_intensities(data)
        validate.check_finite(path, data)
        validate.check_not_constant(path, data)
    header = image.header.copy()
    geometry = NativeGeometry(path=path, shape=tuple(int(s) for s in data.shape), affine=image.affine.copy(), header=header)
    return LoadedImage(
        data=geometry.to_canonical(data),
        affine=geometry.canonical_affine,
        geometry=geometry,
        contrast=contrast_from_name(path) if kind == "image" else None,
    )


def load_label_for(image: LoadedImage, label_path: str | Path) -> LoadedImage:
    """Load a binary label and check it lies on ``image``'s native grid.

    Raises:
        InputError: the label is unreadable, not binary, or on another grid.
    """
    label = load_image(label_path, kind="label")
    validate.check_same_grid(
        image.path, image.geometry.shape, image.geometry.affine, label.path, label.geometry.shape, label.geometry.affine
    )
    return label


def _header_for_output(geometry: NativeGeometry, dtype: type, cal_max: float = 1) -> nib.Nifti1Header:
    header = geometry.header.copy()
    # free-text fields and extensions may hold identifiers (names, accession numbers): never copied
    header.extensions.clear()
    for field in ("descrip", "aux_file", "db_name", "intent_name"):
        if field in header.keys():
            header[field] = b""
    header["descrip"] = b"lesionseg mask"
    header.set_data_shape(geometry.shape)
    header.set_data_dtype(dtype)
    header.set_slope_inter(None, None)
    header["cal_min"] = 0
    header["cal_max"] = cal_max
    return header


def mask_image(
    array: np.ndarray, geometry: NativeGeometry, *, soft: bool = False, canonical: bool = True, labeled: bool = False
) -> nib.Nifti1Image:
    """A mask as a NIfTI image on the input's native grid: its shape, affine and qform/sform (with codes), a
    uint8 0/1 mask, (``soft``) float32 values in [0, 1] or (``labeled``) uint16 labels 0..N; no free text or
    extension of the input's header.

    Args:
        array: 3D mask on the canonical grid (``canonical=True``) or on the native grid.
        geometry: the input's native grid, from :func:`load_image`.
    """
    native = geometry.to_native(array) if canonical else np.asarray(array)
    if tuple(native.shape) != geometry.shape:
        raise ValueError(f"mask shape {native.shape} differs from the native shape {geometry.shape}")
    if labeled:
        values = np.rint(native).astype(np.uint16)
    elif soft:
        values = np.clip(native, 0, 1).astype(np.float32)
    else:
        values = (native > 0.5).astype(np.uint8)
    header = _header_for_output(geometry, values.dtype.type, cal_max=max(1, int(values.max(initial=0))))
    image_class = nib.Nifti2Image if isinstance(geometry.header, nib.Nifti2Header) else nib.Nifti1Image
    output = image_class(values, affine=None, header=header)
    qform, qcode = geometry.header.get_qform(coded=True)
    sform, scode = geometry.header.get_sform(coded=True)
    output.set_qform(qform if qform is not None else geometry.affine, code=int(qcode))
    output.set_sform(sform if sform is not None else geometry.affine, code=int(scode))
    return output


def save_mask(
    array: np.ndarray,
    geometry: NativeGeometry,
    path: str | Path,
    *,
    soft: bool = False,
    canonical: bool = True,
    labeled: bool = False,
) -> Path:
    """Write :func:`mask_image` to ``path`` (.nii.gz or .nii), atomically.

    Returns:
        The written path. Its shape, affine, and qform/sform (with their codes) equal the input's.

    Raises:
        OutputError: the destination cannot be written.
    """
    output = mask_image(array, geometry, soft=soft, canonical=canonical, labeled=labeled)
    return atomic_write(Path(path), lambda temporary: nib.save(output, temporary))


def as_loaded_image(
    source: LoadedImage | str | Path | nib.spatialimages.SpatialImage | np.ndarray,
    affine: np.ndarray | None = None,
    *,
    contrast: str | None = None,
    accept_no_orientation: bool = False,
) -> LoadedImage:
    """Anything a user may hand to a segmenter, validated like a file: a :class:`LoadedImage`, a path, a nibabel
    image, or a 3D array with its 4 x 4 voxel-to-world (RAS mm) ``affine``. ``contrast`` (e.g. ``T2w``) overrides
    the one a file name declares; an array has none unless given (a cascade then uses its general lesion model).

    Raises:
        InputError: the checks of :func:`load_image`; an array without an affine.
    """
    loaded = _as_loaded(source, affine, accept_no_orientation)
    return replace(loaded, contrast=canonical_contrast(contrast)) if contrast is not None else loaded


def _as_loaded(source: object, affine: np.ndarray | None, accept_no_orientation: bool) -> LoadedImage:
    if isinstance(source, LoadedImage):
        return source
    if isinstance(source, str | Path):
        return load_image(source, accept_no_orientation=accept_no_orientation)
    if isinstance(source, np.ndarray):
        if affine is None:
            raise InputError("<array>: an array needs its 4 x 4 affine (voxel to world, RAS mm)")
        source = nib.Nifti1Image(np.asarray(source), np.asarray(affine, dtype=float))
        source.set_qform(source.affine, code=1)
    image = source if isinstance(source, nib.Nifti1Image | nib.Nifti2Image) else nib.Nifti1Image(
        np.asanyarray(source.dataobj), source.affine)
    where = Path(image.get_filename() or "<in-memory image>")
    validate.check_header(where, image)
    return _oriented(where, image, np.asanyarray(image.dataobj), kind="image", accept_no_orientation=accept_no_orientation)


def save_image(array: np.ndarray, affine: np.ndarray, path: str | Path, *, dtype: type = np.float32) -> Path:
    """Write a plain image (e.g. a phantom) with the given affine, qform and sform codes 1 (scanner)."""
    output = nib.Nifti1Image(np.asarray(array).astype(dtype), affine)
    output.set_qform(affine, code=1)
    output.set_sform(affine, code=1)
    output.header.set_xyzt_units("mm", "sec")
    return atomic_write(Path(path), lambda temporary: nib.save(output, temporary))
