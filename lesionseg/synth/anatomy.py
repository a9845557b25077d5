"""Analytic anatomy of a cervical spinal-cord phantom, defined in world millimetres.

World frame (RAS+ mm, origin at the centre of the field of view): ``x`` to the subject's right, ``y``
anterior, ``z`` superior. The cord follows a gently curved centerline ``(xc(z), yc(z))``; in the cord's local
frame ``u = x - xc(z)``, ``v = y - yc(z)`` its cross-section is an ellipse of about 12 mm (left-right) by
8 mm (antero-posterior). CSF surrounds it, vertebral bodies and discs lie in front of the canal, posterior
arches behind it, soft tissue around all of that, air outside the neck.

Lesions are ellipsoids in the cord's local frame, elongated along the cord, clipped to the cord.

The domain-randomised phantoms add what makes the cord's extent ambiguous on real scans: a conus that tapers
to its tip inside the field of view, and nerve roots crossing the CSF (rootlets leaving the cord towards the
foramina, the cauda equina below the conus), nerve tissue that is never part of the cord mask.

Optional lesion mimics (not lesions, never in the lesion mask) give a detector something to be wrong about:
faint small foci inside the cord (grey-matter / central-canal partial volume, as on real scans) and
lesion-bright foci in the soft tissue around the canal (vessels, nodes, fat).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lesionseg.synth.body import Body, paint_body, paint_vertebra_sides
from lesionseg.synth.tissues import Tissue

#: Height (mm) of C2 above the C2-C3 disc: its body and the dens, up to the tip of the dens.
C2_HEIGHT_MM = 36.0
#: Height (mm) of the dens, C2's upper part: only the body's posterior part (behind :data:`DENS_FRONT` times its
#: antero-posterior semi-axis from its centre) is bone there, C1's anterior arch in front of it.
DENS_HEIGHT_MM = 14.0
DENS_FRONT = 0.1


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
class Mimic:
    """A lesion mimic: an ellipsoid in the cord's local frame (as :class:`Lesion`), painted inside the cord
    (``in_cord``, faint) or only where it overlaps soft tissue (lesion-bright)."""

    center_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    in_cord: bool


@dataclass(frozen=True)
class NerveRoot:
    """A nerve root: a tube of ``radius_mm`` from ``start_mm`` to ``end_mm`` (points ``(u, v, z)`` in the cord's
    local frame, as :class:`Lesion`), painted only where it crosses CSF."""

    start_mm: tuple[float, float, float]
    end_mm: tuple[float, float, float]
    radius_mm: float


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
    mimics: tuple[Mimic, ...] = ()
    #: Where the mimics' intensities lie in their ranges (in-cord, soft tissue), 0 to 1: see
    #: :func:`lesionseg.synth.contrasts.tissue_lookup`.
    mimic_levels: tuple[float, float] = (0.0, 0.0)
    #: Render the cord's grey-matter butterfly (its own tissue class, part of the cord mask).
    grey_matter: bool = False
    #: Height (mm) below which the canal holds CSF only: the cord ends (conus) inside the field of view.
    cord_start_mm: float = -np.inf
    #: Length (mm) over which the cord narrows to its tip above ``cord_start_mm`` (0: a blunt end).
    conus_taper_mm: float = 0.0
    #: Nerve roots in the CSF (domain-randomised phantoms); nerve tissue, not cord.
    nerve_roots: tuple[NerveRoot, ...] = ()
    #: The anatomy of a whole field of view around the canal (None: the small phantoms' neck ellipse).
    body: Body | None = None
    #: Height (mm) of the upper face of the C2-C3 disc, the top disc of the spine: above it the tall C2 (body and
    #: dens, :data:`C2_HEIGHT_MM`), no vertebral body above C2 (C1 has none) and the skull base (inf: none in the
    #: field of view, the vertebrae repeat to its top).
    top_disc_mm: float = np.inf

    def centerline(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centerline ``(xc, yc)`` in mm at heights ``z`` (mm)."""
        (ax, ay), (px, py), (fx, fy) = (
            self.centerline_amplitude_mm,
            self.centerline_period_mm,
            self.centerline_phase,
        )
        return ax * np.sin(2 * np.pi * z / px + fx), ay * np.sin(2 * np.pi * z / py + fy)

    @property
    def canal_semi_axes_mm(self) -> tuple[float, float]:
        """The canal's nominal semi-axes (mm): the cord's plus the CSF margin (before swelling), which the body
        around it is built on."""
        return (self.cord_semi_axes_mm[0] + self.csf_margin_mm[0], self.cord_semi_axes_mm[1] + self.csf_margin_mm[1])

    def column(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where, at heights ``z``, the vertebral column is bone (vertebrae) and where disc: they alternate with
        one period, up to the top disc when there is one (C2 above it, then no vertebral body)."""
        level = np.mod(z - self.vertebra_phase_mm, self.vertebra_period_mm)
        bone, disc = level >= self.disc_height_mm, level < self.disc_height_mm
        if np.isfinite(self.top_disc_mm):
            above = z >= self.top_disc_mm
            bone = np.where(above, z < self.top_disc_mm + C2_HEIGHT_MM, bone)
            disc = disc & ~above
        return bone, disc

    def disc_top_below(self, height_mm: float) -> float:
        """The upper face of the first disc of the periodic column at or below ``height_mm``: where a top disc
        (:attr:`top_disc_mm`) can go."""
        k = np.floor((height_mm - self.vertebra_phase_mm - self.disc_height_mm) / self.vertebra_period_mm)
        return float(self.vertebra_phase_mm + k * self.vertebra_period_mm + self.disc_height_mm)

    def c2(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Where C2 is, at world points: its body from the top disc up and, over its upper part, the dens (the
        anchor of the vertebral levels; False everywhere without a top disc). Broadcast like :meth:`render`."""
        xc, yc = self.centerline(z)
        u, v = x - xc, y - yc
        body, body_center, body_depth = self._vertebral_body(u, v, self.cord_semi_axes(z)[1] + self.csf_margin_mm[1])
        above_disc = z - self.top_disc_mm
        in_c2 = body & (above_disc >= 0.0) & (above_disc < C2_HEIGHT_MM)
        dens_only = above_disc >= C2_HEIGHT_MM - DENS_HEIGHT_MM
        return in_c2 & ~(dens_only & (v - body_center > DENS_FRONT * body_depth))

    def _vertebral_body(self, u: np.ndarray, v: np.ndarray, csf_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The vertebral bodies' (and discs') ellipse in front of the canal (local frame ``u``, ``v``), its centre's
        ``v`` and its antero-posterior semi-axis."""
        body_width, body_depth = (8.0, 7.5) if self.body is None else self.body.vertebral_body.semi_axes_mm
        body_center = csf_b + 1.5 + body_depth
        return (u / body_width) ** 2 + ((v - body_center) / body_depth) ** 2 <= 1.0, body_center, body_depth

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

        csf_a, csf_b = a + self.csf_margin_mm[0], b + self.csf_margin_mm[1]
        in_vertebra, in_disc = self.column(z)
        if self.body is None:
            neck_a, neck_b = self.neck_semi_axes_mm
            paint((x / neck_a) ** 2 + ((y - 0.35 * neck_b) / neck_b) ** 2 <= 1.0, Tissue.SOFT)
        else:
            paint_body(tissue, u, v, z, self.body)
            paint_vertebra_sides(tissue, u, v, in_vertebra, (csf_a, csf_b), self.body)
        canal = (u / csf_a) ** 2 + (v / csf_b) ** 2 <= 1.0
        body, body_center, body_depth = self._vertebral_body(u, v, csf_b)
        paint(body & in_vertebra, Tissue.BONE)
        paint(body & in_disc, Tissue.DISC)
        if np.isfinite(self.top_disc_mm):
            above_c2 = z - self.top_disc_mm - C2_HEIGHT_MM
            paint(_atlas_and_dens(u, v, above_c2, body_center, body_depth), Tissue.SOFT)
            paint(_atlas_and_dens(u, v, above_c2, body_center, body_depth, bone=True), Tissue.BONE)
            paint(_skull_base(u, v, above_c2, csf_b), Tissue.BONE)
        arch_center = -(csf_b + 1.5 + 3.0)
        arch = ((u / (csf_a + 4.0)) ** 2 + ((v - arch_center) / 3.0) ** 2 <= 1.0) & (v < -csf_b)
        spinous = (np.abs(u) <= 2.0) & (v < arch_center) & (v > arch_center - 14.0)
        paint((arch | spinous) & in_vertebra, Tissue.BONE)
        paint(canal, Tissue.CSF)
        if self.nerve_roots:  # tested on the canal's points only: a few percent of the field of view
            canal_points = np.nonzero(tissue == Tissue.CSF)
            pu, pv, pz = (np.broadcast_to(c, shape)[canal_points] for c in (u, v, z))
            on_root = np.zeros(pu.shape, dtype=bool)
            for root in self.nerve_roots:
                on_root |= _tube(pu, pv, pz, root)
            tissue[tuple(index[on_root] for index in canal_points)] = Tissue.NERVE_ROOT

        reach = 1.0  # the cord's cross-section, as a fraction of its semi-axes, narrowing along the conus
        if self.conus_taper_mm > 0:
            reach = np.sqrt(np.clip((z - self.cord_start_mm) / self.conus_taper_mm, 0.0, 1.0))
        cord = ((u / a) ** 2 + (v / b) ** 2 <= reach**2) & (z >= self.cord_start_mm)
        paint(cord, Tissue.CORD)
        if self.grey_matter:
            paint(cord & _butterfly(u / a, v / b), Tissue.GREY_MATTER)
        for mimic in self.mimics:
            inside = _ellipsoid(u, v, z, mimic.center_mm, mimic.semi_axes_mm)
            if mimic.in_cord:
                paint(inside & cord, Tissue.CORD_MIMIC)
            else:
                paint(inside & (tissue == Tissue.SOFT), Tissue.TISSUE_MIMIC)
        for lesion in self.lesions:
            paint(_ellipsoid(u, v, z, lesion.center_mm, lesion.semi_axes_mm) & cord, Tissue.LESION)
        return tissue


def _atlas_and_dens(u: np.ndarray, v: np.ndarray, above_c2: np.ndarray, body_center: np.ndarray,
                    body_depth: float, *, bone: bool = False) -> np.ndarray:
    """The top of C2 and C1 in front of the canal: over C2's upper 14 mm only the dens (the body's posterior half) is
    bone, soft tissue in front of it (``bone=False``) with C1's anterior arch (``bone=True``, 5 mm high, 4 mm
    thick) 2.5 mm in front of the dens: disc-like stripes that are not discs."""
    level = (above_c2 > -DENS_HEIGHT_MM) & (above_c2 < 0.0)
    front = v - body_center
    dens_front = DENS_FRONT * body_depth
    if not bone:
        return level & (np.abs(u) < 9.0) & (front > dens_front) & (front < dens_front + 12.0)
    arch = level & (above_c2 > -10.0) & (above_c2 < -5.0) & (front > dens_front + 2.5) & (front < dens_front + 6.5)
    return arch & (np.abs(u) < 12.0)


def _skull_base(u: np.ndarray, v: np.ndarray, above_c2: np.ndarray, csf_b: np.ndarray) -> np.ndarray:
    """The skull base around the foramen magnum, from 8 mm above C2: the clivus in front of the canal (rising
    forwards) and the occipital bone behind it."""
    clivus = (above_c2 > 8.0) & (v > csf_b + 2.0) & (v < csf_b + 14.0 + 0.5 * above_c2) & (np.abs(u) < 14.0)
    occipital = (above_c2 > 14.0) & (v < -csf_b - 3.0) & (v > -csf_b - 12.0) & (np.abs(u) < 35.0)
    return clivus | occipital


def _butterfly(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The grey-matter 'H' in the cord's normalised cross-section (``p`` left-right, ``q`` anterior, both in
    units of the cord's semi-axes): ventral and dorsal horns joined by the commissure."""
    ventral = ((np.abs(p) - 0.38) / 0.2) ** 2 + ((q - 0.3) / 0.38) ** 2 <= 1.0
    dorsal = ((np.abs(p) - 0.3) / 0.11) ** 2 + ((q + 0.42) / 0.42) ** 2 <= 1.0
    commissure = (np.abs(q) <= 0.12) & (np.abs(p) <= 0.42)
    return ventral | dorsal | commissure


def _tube(u: np.ndarray, v: np.ndarray, z: np.ndarray, root: NerveRoot) -> np.ndarray:
    """Points within ``root.radius_mm`` of the segment from ``root.start_mm`` to ``root.end_mm``."""
    start, direction = np.asarray(root.start_mm), np.subtract(root.end_mm, root.start_mm)
    offsets = (u - start[0], v - start[1], z - start[2])
    projection = sum(o * d for o, d in zip(offsets, direction, strict=True))
    along = np.clip(projection / max(float(direction @ direction), 1e-9), 0.0, 1.0)
    squared = sum((o - along * d) ** 2 for o, d in zip(offsets, direction, strict=True))
    return squared <= root.radius_mm**2


def _ellipsoid(
    u: np.ndarray, v: np.ndarray, z: np.ndarray, center: tuple[float, float, float], semi_axes: tuple[float, float, float]
) -> np.ndarray:
    (cu, cv, cz), (ru, rv, rz) = center, semi_axes
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 + ((z - cz) / rz) ** 2 <= 1.0


def _sample_mimics(
    rng: np.random.Generator,
    fov_z_mm: float,
    cord_semi_axes_mm: tuple[float, float],
    csf_margin_mm: tuple[float, float],
    count: int,
) -> tuple[Mimic, ...]:
    mimics = []
    for _ in range(count):
        angle = rng.uniform(0, 2 * np.pi)
        cz = rng.uniform(-fov_z_mm / 2 + 8.0, fov_z_mm / 2 - 8.0)
        if rng.random() < 0.5:  # faint focus at the cord's edge, smaller than most lesions
            radius = rng.uniform(0.45, 0.8)
            center = (radius * cord_semi_axes_mm[0] * np.cos(angle), radius * cord_semi_axes_mm[1] * np.sin(angle), cz)
            mimics.append(Mimic(center, (rng.uniform(0.8, 1.6), rng.uniform(0.8, 1.4), rng.uniform(1.0, 3.0)), True))
        else:  # lesion-bright focus in the tissue around the canal
            distance = rng.uniform(3.0, 14.0)
            reach = (cord_semi_axes_mm[0] + csf_margin_mm[0] + distance, cord_semi_axes_mm[1] + csf_margin_mm[1] + distance)
            center = (reach[0] * np.cos(angle), reach[1] * np.sin(angle), cz)
            mimics.append(Mimic(center, (rng.uniform(1.2, 3.0), rng.uniform(1.2, 3.0), rng.uniform(1.5, 6.0)), False))
    return tuple(mimics)


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
    max_mimics: int = 0,
) -> Anatomy:
    """Draw one subject's anatomy and lesions.

    Args:
        rng: the subject's random generator.
        fov_mm: field of view (left-right, antero-posterior, superior-inferior) in mm.
        max_lesions: at most this many lesions (0 to ``max_lesions``).
        p_no_lesion: probability of a subject without lesions.
        max_mimics: at most this many lesion mimics (0 to ``max_mimics``, drawn after everything else, so a
            subject's anatomy and lesions do not depend on it).
    """
    cord_semi_axes = (rng.uniform(5.2, 6.8), rng.uniform(3.4, 4.4))  # about 12 x 8 mm
    count = 0 if (max_lesions == 0 or rng.random() < p_no_lesion) else int(rng.integers(1, max_lesions + 1))
    anatomy = Anatomy(
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
    if max_mimics == 0:
        return anatomy
    count = int(rng.integers(0, max_mimics + 1))
    mimics = _sample_mimics(rng, fov_mm[2], cord_semi_axes, anatomy.csf_margin_mm, count)
    return dataclasses.replace(anatomy, mimics=mimics, mimic_levels=(float(rng.random()), float(rng.random())))
