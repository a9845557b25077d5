"""The interactive viewer of the HTML reports: NiiVue (``viewer/niivue.umd.js``, from the npm package
``@niivue/niivue``, BSD-2-Clause) and our glue (``viewer/viewer.js``), copied once into each output folder's
``lesionseg-viewer/``; each report embeds its scan and masks as base64 NIfTI and loads the two scripts from there.
"""

from __future__ import annotations

import base64
import gzip
from importlib import resources
from pathlib import Path

import nibabel as nib
import numpy as np

from lesionseg.io.atomic import atomic_write

VIEWER_FOLDER = "lesionseg-viewer"
ASSETS = ("niivue.umd.js", "viewer.js", "NIIVUE-LICENSE")
#: the image is stored as int16 with a scale factor: about 15 bits of its range, half the size of float32
_INT16_STEPS = 32000


def install_viewer(out_dir: Path) -> Path:
    """Write the viewer's files into ``out_dir/lesionseg-viewer/`` (atomically; a file already there with the same
    content is left alone) and return that folder."""
    folder = out_dir / VIEWER_FOLDER
    source = resources.files("lesionseg.reporting") / "viewer"
    for name in ASSETS:
        content = (source / name).read_bytes()
        target = folder / name
        if not (target.is_file() and target.read_bytes() == content):
            atomic_write(target, lambda temporary, content=content: temporary.write_bytes(content))
    return folder


def _base64_nifti(image: nib.Nifti1Image) -> str:
    return base64.b64encode(gzip.compress(image.to_bytes(), compresslevel=5)).decode("ascii")


def image_base64(data: np.ndarray, affine: np.ndarray) -> str:
    """A scan (canonical array and affine) as base64 gzipped NIfTI: int16 with a scale factor, its default
    window the 0.5-99.5 percentiles of the non-zero voxels."""
    data = np.asarray(data, dtype=np.float32)
    peak = float(np.abs(data).max(initial=0.0)) or 1.0
    slope = peak / _INT16_STEPS
    image = nib.Nifti1Image(np.rint(data / slope).astype(np.int16), affine)
    image.header.set_slope_inter(slope, 0.0)
    foreground = data[data != 0]
    low, high = np.percentile(foreground, [0.5, 99.5]) if foreground.size else (0.0, 1.0)
    image.header["cal_min"], image.header["cal_max"] = float(low), float(high if high > low else low + 1)
    return _base64_nifti(image)


def labels_base64(labels: np.ndarray, affine: np.ndarray) -> str:
    """A mask or label map (0 = none) as base64 gzipped NIfTI (uint8 or uint16)."""
    values = np.asarray(labels)
    dtype = np.uint8 if int(values.max(initial=0)) < 256 else np.uint16
    return _base64_nifti(nib.Nifti1Image(values.astype(dtype), affine))
