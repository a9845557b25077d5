"""Analytic anatomy of a cervical spinal-cord phantom, defined in world millimetres.

World frame (RAS+ mm, origin at the centre of the field of view): ``x`` to the subject's right, ``y``
anterior, ``z`` superior. The cord follows a gently curved centerline ``(xc(z), yc(z))``; in the cord's local
frame ``u = x - xc(z)``, ``v = y - yc(z)`` its cross-section is an ellipse of about 12 mm (left-right) by
8 mm (antero-posterior). CSF surrounds it, vertebral bodies and discs lie in front of the canal, posterior
arches behind it, soft tissue around all of that, air outside the neck.

Lesions are ellipsoids in the cord's local frame, elongated along the cord, clipped to the cord.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Tissue(IntEnum):
    """Tissue classes of the phantom (values of the rendered class map)."""

    AIR = 0
    SOFT = 1
    BONE = 2
    DISC = 3
    CSF = 4
    CORD = 5
    LESION = 6


@dataclass(frozen=True)
class Lesion:
    """An ellipsoid in the cord's local frame (mm).

    Attributes:
        center_mm: ``(u, v, z)`` centre; ``u``/``v`` are offsets from the centerline.
        semi_axes_mm: half-lengths along ``u`` (left-right), ``v`` (antero-posterior) and ``z`` (along the cord).
    """

    center_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]


@dataclass(frozen=True)
class Anatomy:
    """One subject's anatomy; every contrast of the subject is rendered from it."""

    fov_mm: tuple[float, float, float]
    centerline_amplitude_mm: tuple[float, float]
    centerline_period_mm: tuple[float, float]
    centerline_phase: tuple[float, float]
    cord_semi_axes_mm: tuple[float, float]
    cord_swelling: float
    csf_margin_mm: tuple[float, float]
    vertebra_period_mm: float
    disc_height_mm: float
    vertebra_phase_mm: float
    neck_semi_axes_mm: tuple[float, float]
    lesions: tuple[Lesion, ...]

    def centerline(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centerline ``(xc, yc)`` in mm at heights ``z`` (mm)."""
        (ax, ay), (px, py), (fx, fy) = (
            self.centerline_amplitude_mm,
            self.centerline_period_mm,
            self.centerline_phase,
        )
        return ax * np.sin(2 * np.pi * z / px + fx), ay * np.sin(2 * np.pi * z / py + fy)

    def cord_semi_axes(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cord semi-axes (left-right, antero-posterior) in mm at heights ``z``; a mild swelling."""
        scale = 1.0 + self.cord_swelling * np.cos(2 * np.pi * z / self.fov_mm[2])
        return self.cord_semi_axes_mm[0] * scale, self.cord_semi_axes_mm[1] * scale

    def render(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Tissue class (:class:`Tissue`) at world points; ``x``, ``y``, ``z`` broadcast together.

        Returns:
            uint8 array of the broadcast shape.
        """
        xc, yc = self.centerline(z)
        a, b = self.cord_semi_axes(z)
        u, v = x - xc, y - yc
        shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(u), np.shape(v), np.shape(z))
        tissue = np.full(shape, Tissue.AIR, dtype=np.uint8)

        def paint(where: np.ndarray, value: Tissue) -> None:
            tissue[np.broadcast_to(where, shape)] = value

        neck_a, neck_b = self.neck_semi_axes_mm
        neck = (x / neck_a) ** 2 + ((y - 0.35 * neck_b) / neck_b) ** 2 <= 1.0
        paint(neck, Tissue.SOFT)

        csf_a, csf_b = a + self.csf_margin_mm[0], b + self.csf_margin_mm[1]
        canal = (u / csf_a) ** 2 + (v / csf_b) ** 2 <= 1.0
        level = np.mod(z - self.vertebra_phase_mm, self.vertebra_period_mm)
        in_vertebra = level >= self.disc_height_mm
        body_depth = 7.5
        body_center = csf_b + 1.5 + body_depth
        body = (u / 8.0) ** 2 + ((v - body_center) / body_depth) ** 2 <= 1.0
        paint(body & in_vertebra, Tissue.BONE)
        paint(body & ~in_vertebra, Tissue.DISC)
        arch_center = -(csf_b + 1.5 + 3.0)
        arch = ((u / (csf_a + 4.0)) ** 2 + ((v - arch_center) / 3.0) ** 2 <= 1.0) & (v < -csf_b)
        spinous = (np.abs(u) <= 2.0) & (v < arch_center) & (v > arch_center - 14.0)
        paint((arch | spinous) & in_vertebra, Tissue.BONE)
        paint(canal, Tissue.CSF)

        cord = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        paint(cord, Tissue.CORD)
        for lesion in self.lesions:
            (cu, cv, cz), (ru, rv, rz) = lesion.center_mm, lesion.semi_axes_mm
            inside = ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 + ((z - cz) / rz) ** 2 <= 1.0
            paint(inside & cord, Tissue.LESION)
        return tissue


def _sample_lesions(
    rng: np.random.Generator,
    fov_z_mm: float,
    cord_semi_axes_mm: tuple[float, float],
    count: int,
) -> tuple[Lesion, ...]:
    lesions: list[Lesion] = []
    attempts = 0
    while len(lesions) < count and attempts < 100:
        attempts += 1
        half_length = rng.uniform(1.5, 7.5)  # 3 to 15 mm long along the cord
        ru = rng.uniform(1.2, 0.55 * cord_semi_axes_mm[0])
        rv = rng.uniform(1.0, 0.6 * cord_semi_axes_mm[1])
        margin = half_length + 6.0
        cz = rng.uniform(-fov_z_mm / 2 + margin, fov_z_mm / 2 - margin)
        if any(abs(cz - other.center_mm[2]) < half_length + other.semi_axes_mm[2] + 2.0 for other in lesions):
            continue
        angle = rng.uniform(0, 2 * np.pi)
        radius = rng.uniform(0.0, 0.45)
        cu = radius * cord_semi_axes_mm[0] * np.cos(angle)
        cv = radius * cord_semi_axes_mm[1] * np.sin(angle)
        lesions.append(Lesion(center_mm=(cu, cv, cz), semi_axes_mm=(ru, rv, half_length)))
    return tuple(lesions)


def sample_anatomy(
    rng: np.random.Generator,
    fov_mm: tuple[float, float, float],
    *,
    max_lesions: int = 6,
    p_no_lesion: float = 0.15,
) -> Anatomy:
    """Draw one subject's anatomy and lesions.

    Args:
        rng: the subject's random generator.
        fov_mm: field of view (left-right, antero-posterior, superior-inferior) in mm.
        max_lesions: at most this many lesions (0 to ``max_lesions``).
        p_no_lesion: probability of a subject without lesions.
    """
    cord_semi_axes = (rng.uniform(5.2, 6.8), rng.uniform(3.4, 4.4))  # about 12 x 8 mm
    count = 0 if (max_lesions == 0 or rng.random() < p_no_lesion) else int(rng.integers(1, max_lesions + 1))
    return Anatomy(
        fov_mm=tuple(float(f) for f in fov_mm),  # type: ignore[arg-type]
        centerline_amplitude_mm=(rng.uniform(0.0, 2.0), rng.uniform(1.0, 4.0)),
        centerline_period_mm=(rng.uniform(150, 300), rng.uniform(150, 300)),
        centerline_phase=(rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)),
        cord_semi_axes_mm=cord_semi_axes,
        cord_swelling=rng.uniform(0.0, 0.12),
        csf_margin_mm=(rng.uniform(2.0, 3.5), rng.uniform(1.5, 3.0)),
        vertebra_period_mm=rng.uniform(17.0, 21.0),
        disc_height_mm=rng.uniform(4.0, 6.0),
        vertebra_phase_mm=rng.uniform(0, 20.0),
        neck_semi_axes_mm=(rng.uniform(45, 60), rng.uniform(40, 50)),
        lesions=_sample_lesions(rng, fov_mm[2], cord_semi_axes, count),
    )
