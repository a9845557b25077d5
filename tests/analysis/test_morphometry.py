"""Lesion morphometry against phantoms whose every quantity is known: an ellipsoidal lesion inside a straight
elliptic cord, rendered by the phantom generator, measured within one voxel of the analytic truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesionseg.analysis.morphometry import measure_lesions
from lesionseg.synth.anatomy import Anatomy, Lesion
from lesionseg.synth.tissues import Tissue

SPACING = (0.5, 0.5, 1.0)
CORD_SEMI_AXES = (6.0, 4.0)


def _render(lesion: Lesion) -> tuple[np.ndarray, np.ndarray]:
    """(lesion mask, cord mask) of a straight cord with one lesion, on a RAS grid centred on the cord."""
    anatomy = Anatomy(
        fov_mm=(24.0, 24.0, 60.0), centerline_amplitude_mm=(0.0, 0.0), centerline_period_mm=(100.0, 100.0),
        centerline_phase=(0.0, 0.0), cord_semi_axes_mm=CORD_SEMI_AXES, cord_swelling=0.0, csf_margin_mm=(2.0, 2.0),
        vertebra_period_mm=20.0, disc_height_mm=4.0, vertebra_phase_mm=0.0, neck_semi_axes_mm=(40.0, 30.0),
        lesions=(lesion,),
    )
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip((48, 48, 60), SPACING)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    tissue = anatomy.render(x, y, z)
    cord = np.isin(tissue, [Tissue.CORD, Tissue.LESION, Tissue.GREY_MATTER])
    return tissue == Tissue.LESION, cord


LESIONS = [  # (centre u, v, z), (semi-axes u, v, z): on the midline, dorsal, ventral, lateral
    ((0.0, 0.0, 0.0), (2.0, 1.5, 6.0)),
    ((0.0, -1.5, 3.0), (2.5, 1.5, 4.0)),
    ((0.0, 1.0, -5.0), (1.5, 2.0, 9.0)),
    ((3.0, 0.0, 2.0), (1.5, 1.2, 5.0)),
]


@pytest.mark.parametrize(("centre", "semi"), LESIONS)
def test_every_quantity_within_one_voxel_of_the_truth(centre: tuple, semi: tuple) -> None:
    lesion, cord = _render(Lesion(center_mm=centre, semi_axes_mm=semi))
    measured = measure_lesions(lesion.astype(np.int32), SPACING, cord)[1]
    (cu, cv, _), (ru, rv, rz) = centre, semi
    a, b = CORD_SEMI_AXES
    voxel = max(SPACING)
    assert measured.volume_mm3 == pytest.approx(4 / 3 * math.pi * ru * rv * rz, rel=0.08)
    assert measured.length_si_mm == pytest.approx(2 * rz, abs=SPACING[2])
    assert measured.width_lr_mm == pytest.approx(2 * ru, abs=SPACING[0])
    assert measured.width_ap_mm == pytest.approx(2 * rv, abs=SPACING[1])
    assert measured.max_equivalent_diameter_mm == pytest.approx(2 * math.sqrt(ru * rv), abs=voxel)
    # one voxel of the cord's and of the lesion's boundary each may move the ratio: bounded by the areas
    assert measured.max_axial_damage_ratio == pytest.approx(ru * rv / (a * b), abs=0.03)
    if cu == 0.0:  # the lesion crosses the cord's mid-sagittal slice: bridges there, at the lesion's widest row
        assert measured.dorsal_bridge_mm == pytest.approx(b + cv - rv, abs=SPACING[1])
        assert measured.ventral_bridge_mm == pytest.approx(b - cv - rv, abs=SPACING[1])
    expected = "central" if math.hypot(cu / a, cv / b) < 1 / 3 else ("lateral" if abs(cu / a) > abs(cv / b) else
                                                                     "dorsal" if cv < 0 else "ventral")
    assert measured.position == expected
    assert measured.side == ("midline" if cu == 0 else "right" if cu > 0 else "left")


def test_a_lesion_off_the_cords_midline_is_bridged_on_its_own_central_slice() -> None:
    lesion, cord = _render(Lesion(center_mm=(3.5, 0.0, 0.0), semi_axes_mm=(1.2, 1.2, 3.0)))
    measured = measure_lesions(lesion.astype(np.int32), SPACING, cord)[1]
    b_at = CORD_SEMI_AXES[1] * math.sqrt(1 - (3.5 / CORD_SEMI_AXES[0]) ** 2)  # the cord's half-depth at u = 3.5
    assert measured.bridge_slice in (30, 31)  # u = 3.5 mm right of the centre (index 23.5 + 7), 0.5 mm voxels
    assert measured.dorsal_bridge_mm == pytest.approx(b_at - 1.2, abs=SPACING[1])
    assert measured.ventral_bridge_mm == pytest.approx(b_at - 1.2, abs=SPACING[1])


def test_without_a_cord_only_the_shape_is_measured() -> None:
    lesion, _ = _render(Lesion(center_mm=(0.0, 0.0, 0.0), semi_axes_mm=(2.0, 1.5, 6.0)))
    measured = measure_lesions(lesion.astype(np.int32), SPACING, None)[1]
    assert measured.max_axial_damage_ratio is None and measured.dorsal_bridge_mm is None
    assert measured.position == "" and measured.length_si_mm == pytest.approx(12.0, abs=1.0)
