"""The anatomy around the canal on a whole-field-of-view scan: body outline, skin and subcutaneous fat, muscles
with fat planes between them, airway and oesophagus (neck), lungs (thorax), the great vessels, vertebral bodies
with their lateral masses (facets, foramina between them) and transverse processes, and SynthSeg-style random
compartments (Billot et al. 2023) splitting the remaining soft tissue, so that "everything else" is never one
flat value.

Every structure is an ellipse in the axial plane, positioned in the cord's local frame (``u`` left-right, ``v``
anterior, mm from the centerline), so the body follows the cord's curvature; the compartments are the Voronoi
cells of random points. None of it is cord: the cord and lesion masks are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from lesionseg.synth.tissues import COMPARTMENT_BASE, MAX_COMPARTMENTS, Tissue

Region = Literal["neck", "thorax", "lumbar"]


@dataclass(frozen=True)
class Ellipse:
    """An axial ellipse ``(u, v)`` centre and semi-axes (mm), rotated by ``angle`` (radians)."""

    center_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]
    angle: float = 0.0

    def inside(self, u: np.ndarray, v: np.ndarray, grow_mm: float = 0.0) -> np.ndarray:
        du, dv = u - self.center_mm[0], v - self.center_mm[1]
        c, s = np.cos(self.angle), np.sin(self.angle)
        p, q = c * du + s * dv, -s * du + c * dv
        a, b = self.semi_axes_mm[0] + grow_mm, self.semi_axes_mm[1] + grow_mm
        return (p / a) ** 2 + (q / b) ** 2 <= 1.0


@dataclass(frozen=True)
class Body:
    """One subject's body around the canal (see the module docstring).

    Attributes:
        region: neck, thorax or lumbar (which organs there are, how big the vertebrae are).
        outline: the body's outer surface.
        skin_mm, fat_mm: thickness of the skin and of the subcutaneous fat under it.
        vertebral_body: the vertebral body (bone at vertebra levels, disc between them).
        muscles: each with a fat plane of ``fat_plane_mm`` around it.
        airways: air-filled (airway, lungs, oesophageal lumen).
        organs: soft-tissue organs painted as muscle-like tissue (oesophagus wall, thyroid, bowel).
        dark_vessels, bright_vessels: flow voids and inflow-bright vessels (carotid, jugular, vertebral, aorta).
        compartment_points: ``(K, 3)`` Voronoi seeds ``(u, v, z)`` of the random compartments.
        decoys: tubes that look like a cord in its CSF (a core of the cord's intensity in a ring of the CSF's,
            ``decoy_ring_mm`` thick) outside the canal, so that only the context (the spine around it) says which
            tube is the cord, as bright jugular veins and lymph nodes beside the real cord do on axial scans.
    """

    region: Region
    outline: Ellipse
    skin_mm: float
    fat_mm: float
    fat_plane_mm: float
    vertebral_body: Ellipse
    muscles: tuple[Ellipse, ...]
    airways: tuple[Ellipse, ...]
    organs: tuple[Ellipse, ...]
    dark_vessels: tuple[Ellipse, ...]
    bright_vessels: tuple[Ellipse, ...]
    compartment_points: tuple[tuple[float, float, float], ...]
    decoys: tuple[Ellipse, ...] = ()
    decoy_ring_mm: float = 2.0


def _pair(center: tuple[float, float], semi: tuple[float, float], angle: float = 0.0) -> tuple[Ellipse, Ellipse]:
    """An ellipse and its mirror image across the midline."""
    (u, v), (a, b) = center, semi
    return Ellipse((u, v), (a, b), angle), Ellipse((-u, v), (a, b), -angle)


def _jitter(rng: np.random.Generator, value: float, spread: float = 0.15) -> float:
    return float(value * rng.uniform(1 - spread, 1 + spread))


def _region_structures(
    rng: np.random.Generator, region: Region, muscles: list[Ellipse], *, half_width: float, half_depth: float,
    front: float, body_semi: tuple[float, float], canal_half_width: float,
) -> tuple[list[Ellipse], list[Ellipse], list[Ellipse]]:
    """The airways, organs and vessels of a region (and its own muscles, added to ``muscles``), drawn in a fixed
    order from ``rng``."""
    ca = canal_half_width
    j = lambda value, spread=0.15: _jitter(rng, value, spread)  # noqa: E731
    airways: list[Ellipse] = []
    organs: list[Ellipse] = []
    vessels: list[Ellipse] = []
    if region == "neck":
        muscles += _pair((j(half_width * 0.6), front + j(14.0)), (j(7.0), j(16.0)), rng.uniform(0.3, 0.9))  # SCM
        # levator scapulae / scalenes
        muscles += _pair((j(half_width * 0.55), -j(6.0)), (j(9.0), j(14.0)), rng.uniform(-0.5, 0.5))
        airway = Ellipse((rng.uniform(-3, 3), front + j(26.0)), (j(9.0), j(7.0)))
        airways.append(airway)
        organs.append(Ellipse((rng.uniform(-4, 4), front + j(8.0)), (j(7.0), j(3.5))))  # oesophagus
        if rng.random() < 0.5:
            airways.append(Ellipse((organs[-1].center_mm[0], organs[-1].center_mm[1]), (j(2.5), j(1.0))))
        organs += _pair((j(16.0), front + j(28.0)), (j(8.0), j(5.0)))  # thyroid lobes
        vessels += _pair((j(22.0), front + j(16.0)), (j(3.5), j(3.5)))  # carotids
        vessels += _pair((j(30.0), front + j(14.0)), (j(6.0), j(4.5)))  # jugulars
        vessels += _pair((j(ca + 9.0), j(2.0)), (j(1.8), j(1.8)))  # vertebral arteries
    elif region == "thorax":
        airways += _pair((j(half_width * 0.45), j(half_depth * 0.55)), (j(half_width * 0.35), j(half_depth * 0.5)))
        vessels.append(Ellipse((-j(12.0), front + j(10.0)), (j(11.0), j(11.0))))  # descending aorta
        organs.append(Ellipse((j(4.0), front + j(8.0)), (j(8.0), j(5.0))))  # oesophagus
    else:
        muscles += _pair((j(body_semi[0] + 14), front - j(8.0)), (j(14.0), j(16.0)))  # psoas
        vessels.append(Ellipse((-j(10.0), front + j(12.0)), (j(9.0), j(9.0))))  # aorta
        vessels.append(Ellipse((j(14.0), front + j(12.0)), (j(10.0), j(8.0))))  # inferior vena cava
        for _ in range(int(rng.integers(3, 8))):  # bowel loops
            organs.append(Ellipse((rng.uniform(-0.6, 0.6) * half_width, front + rng.uniform(30, 1.6 * half_depth)),
                                  (rng.uniform(10, 30), rng.uniform(8, 20))))
    return airways, organs, vessels


def sample_body(rng: np.random.Generator, region: Region, canal_semi_axes_mm: tuple[float, float],
                height_mm: float) -> Body:
    """Draw a body of ``region`` around a canal of ``canal_semi_axes_mm``, for a field of view ``height_mm`` tall."""
    ca, cb = canal_semi_axes_mm
    j = lambda value, spread=0.15: _jitter(rng, value, spread)  # noqa: E731
    if region == "neck":
        half_width, half_depth, posterior = j(62), j(64), j(50)  # canal to anterior skin ~75 mm, to posterior ~50
        body_semi = (j(9.0), j(8.0))
    else:
        half_width, half_depth, posterior = j(150), j(110), j(60)
        body_semi = (j(18.0), j(14.0)) if region == "thorax" else (j(24.0), j(17.0))
    outline = Ellipse((0.0, half_depth - posterior), (half_width, half_depth))
    body_center = cb + 2.0 + body_semi[1]
    vertebral_body = Ellipse((0.0, body_center), body_semi)
    front = body_center + body_semi[1]
    muscles = [
        *_pair((j(ca + 14), -j(posterior * 0.45)), (j(11.0), j(posterior * 0.3)), rng.uniform(-0.3, 0.3)),  # erector
        *_pair((j(ca + 6), -j(posterior * 0.2)), (j(6.0), j(8.0))),  # multifidus / semispinalis
        *_pair((j(6.0), front + j(4.0)), (j(5.0), j(3.0))),  # longus colli / psoas-like prevertebral
    ]
    airways, organs, vessels = _region_structures(rng, region, muscles, half_width=half_width, half_depth=half_depth,
                                                  front=front, body_semi=body_semi, canal_half_width=ca)
    dark: list[Ellipse] = []
    bright: list[Ellipse] = []
    for _ in range(int(rng.integers(2, 9))):  # lymph nodes and small vessels, anywhere in the soft tissue
        vessels.append(Ellipse(_soft_tissue_point(rng, half_width, front, posterior), (rng.uniform(2, 5),) * 2))
    for vessel in vessels:
        (bright if rng.random() < 0.5 else dark).append(vessel)
    decoys = tuple(Ellipse(_soft_tissue_point(rng, half_width, front, posterior),
                           (rng.uniform(3.0, 6.5), rng.uniform(2.5, 5.0)), rng.uniform(0, np.pi))
                   for _ in range(int(rng.integers(1, 5))))
    count = int(rng.integers(3, MAX_COMPARTMENTS + 1))
    points = np.column_stack([rng.uniform(-half_width, half_width, count),
                              rng.uniform(-posterior, 2 * half_depth - posterior, count),
                              rng.uniform(-height_mm / 2, height_mm / 2, count)])
    return Body(region=region, outline=outline, skin_mm=float(rng.uniform(1.0, 2.5)),
                fat_mm=float(rng.uniform(2.0, 12.0)), fat_plane_mm=float(rng.uniform(0.8, 2.5)),
                vertebral_body=vertebral_body, muscles=tuple(muscles), airways=tuple(airways), organs=tuple(organs),
                dark_vessels=tuple(dark), bright_vessels=tuple(bright),
                compartment_points=tuple(tuple(float(c) for c in p) for p in points),
                decoys=decoys, decoy_ring_mm=float(rng.uniform(1.0, 3.5)))


def _soft_tissue_point(
    rng: np.random.Generator, half_width: float, front: float, posterior: float
) -> tuple[float, float]:
    """A point of the soft tissue beside or in front of the spine (never in the canal or the vertebral body)."""
    side = rng.choice([-1.0, 1.0])
    if rng.random() < 0.6:  # beside the vertebral body and in front of it, where the great vessels run
        return float(side * rng.uniform(16.0, 0.75 * half_width)), float(rng.uniform(0.0, front + 35.0))
    return float(side * rng.uniform(18.0, 0.7 * half_width)), float(-rng.uniform(10.0, 0.8 * posterior))


def paint_body(tissue: np.ndarray, u: np.ndarray, v: np.ndarray, z: np.ndarray, body: Body) -> None:
    """Paint the body (outline to vessels) into ``tissue`` in place; the spine and canal are painted over it."""
    shape = tissue.shape

    def paint(where: np.ndarray, value: int) -> None:
        tissue[np.broadcast_to(where, shape)] = value

    outline = body.outline
    paint(outline.inside(u, v), Tissue.SKIN)
    paint(outline.inside(u, v, -body.skin_mm), Tissue.FAT)
    deep = np.broadcast_to(outline.inside(u, v, -(body.skin_mm + body.fat_mm)), shape)
    tissue[deep] = _compartments(u, v, z, body.compartment_points, shape)[deep]
    for muscle in body.muscles:
        paint(muscle.inside(u, v, body.fat_plane_mm) & deep, Tissue.FAT)
    for muscle in body.muscles:
        paint(muscle.inside(u, v) & deep, Tissue.MUSCLE)
    for organ in body.organs:
        paint(organ.inside(u, v) & deep, Tissue.MUSCLE)
    for airway in body.airways:
        paint(airway.inside(u, v) & deep, Tissue.AIR)
    for vessel in body.dark_vessels:
        paint(vessel.inside(u, v) & deep, Tissue.VESSEL_DARK)
    for vessel in body.bright_vessels:
        paint(vessel.inside(u, v) & deep, Tissue.VESSEL_BRIGHT)
    for decoy in body.decoys:
        paint(decoy.inside(u, v, body.decoy_ring_mm) & deep, Tissue.DECOY_RING)
        paint(decoy.inside(u, v) & deep, Tissue.DECOY_CORE)


def _compartments(u: np.ndarray, v: np.ndarray, z: np.ndarray, points: tuple[tuple[float, float, float], ...],
                  shape: tuple[int, ...]) -> np.ndarray:
    """The compartment tissue class (Voronoi cell of the nearest point) at every point of ``shape``."""
    nearest = np.zeros(shape, dtype=np.uint8)
    best = np.full(shape, np.inf, dtype=np.float32)
    for index, (pu, pv, pz) in enumerate(points):
        distance = np.broadcast_to((u - pu) ** 2 + (v - pv) ** 2 + (0.25 * (z - pz)) ** 2, shape)
        closer = distance < best
        best[closer] = distance[closer]
        nearest[closer] = index
    return (COMPARTMENT_BASE + nearest).astype(np.uint8)


def paint_vertebra_sides(tissue: np.ndarray, u: np.ndarray, v: np.ndarray, in_vertebra: np.ndarray,
                         canal_semi_axes_mm: tuple[float, float], body: Body) -> None:
    """Lateral masses (facets) beside the canal and transverse processes, at vertebra levels only: between them,
    at the discs' levels, the foramina stay soft tissue."""
    ca, cb = canal_semi_axes_mm
    shape = tissue.shape
    reach = 1.6 * body.vertebral_body.semi_axes_mm[0]
    sides = (*_pair((ca + 4.0, 0.0), (4.0, cb + 1.5)), *_pair((ca + reach * 0.5, 3.0), (reach * 0.5, 2.5)))
    for side in sides:
        tissue[np.broadcast_to(side.inside(u, v) & in_vertebra, shape)] = Tissue.BONE
