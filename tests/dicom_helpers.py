"""Write a NIfTI phantom as a DICOM MR series with SimpleITK (for tests: scans are never shipped)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import SimpleITK as sitk


def write_dicom_series(
    nifti: Path, folder: Path, *, description: str = "T2 SAG", seed: int = 1, patient_id: str = "PHANTOM-001"
) -> str:
    """One file per slice, with patient/study/series/frame-of-reference tags; returns the SeriesInstanceUID.
    Another ``patient_id`` gives another patient (and study) whose files can share the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.Cast(sitk.ReadImage(str(nifti)), sitk.sitkInt16)
    series_uid = pydicom.uid.generate_uid(entropy_srcs=[str(nifti), description, str(seed), patient_id])
    study_uid = pydicom.uid.generate_uid(entropy_srcs=[str(nifti), "study", patient_id])
    frame_uid = pydicom.uid.generate_uid(entropy_srcs=[str(nifti), "frame"])
    direction = image.GetDirection()
    orientation = "\\".join(f"{v:.6f}" for v in (direction[0], direction[3], direction[6], direction[1], direction[4], direction[7]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    common = {
        "0010|0010": "PHANTOM^TEST", "0010|0020": patient_id, "0010|0030": "19700101", "0010|0040": "O",
        "0020|000d": study_uid, "0020|0010": "1", "0008|0020": "20260101", "0008|0030": "120000",
        "0008|0050": "ACC001", "0008|0090": "", "0020|000e": series_uid, "0020|0011": "1",
        "0008|103e": description, "0008|0060": "MR", "0008|0016": "1.2.840.10008.5.1.4.1.1.4",
        "0020|0052": frame_uid, "0020|0037": orientation, "0008|0070": "lesionseg tests",
        "0018|0050": f"{image.GetSpacing()[2]:.6f}",
    }
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        for tag, value in common.items():
            slice_image.SetMetaData(tag, value)
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        slice_image.SetMetaData("0020|0032", "\\".join(f"{v:.6f}" for v in position))
        slice_image.SetMetaData("0020|0013", str(k + 1))
        slice_image.SetMetaData("0008|0018", pydicom.uid.generate_uid(entropy_srcs=[series_uid, str(k)]))
        writer.SetFileName(str(folder / f"slice_{patient_id}_{description.replace(' ', '_')}_{k:04d}.dcm"))
        writer.Execute(slice_image)
    return series_uid
