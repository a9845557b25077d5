"""Vertebral levels counted from discs: disc heights along the cord, only what lies in front of the cord, split
discs as one, a missed disc restored, levels named from C2 (the disc at its lower end is C2-C3), none without C2."""

from __future__ import annotations

import numpy as np

from lesionseg.analysis.discs import find_c2, find_discs, level_map_from_discs, vertebral_levels

SPACING = (1.0, 1.0, 1.0)


def _spine(disc_centres: list[int], shape: tuple[int, int, int] = (60, 60, 120)) -> tuple[np.ndarray, np.ndarray]:
    """A straight cord along axis 2 at (30, 30) and 4-slice discs 10 mm in front of it, centred on
    ``disc_centres``."""
    cord = np.zeros(shape, np.uint8)
    cord[27:34, 27:33, :] = 1
    discs = np.zeros(shape, np.uint8)
    for z in disc_centres:
        discs[22:39, 38:50, z - 2 : z + 2] = 1  # 17 x 12 x 4 voxels, centre z - 0.5
    return discs, cord


def test_discs_are_found_top_first_at_their_centres() -> None:
    discs, cord = _spine([100, 82, 64, 46])
    np.testing.assert_allclose(find_discs(discs, cord, SPACING), [99.5, 81.5, 63.5, 45.5])


def test_only_what_lies_in_front_of_the_cord_counts_and_a_split_disc_is_one() -> None:
    discs, cord = _spine([100, 82, 64, 46], shape=(160, 60, 120))
    discs[22:39, 5:20, 25:29] = 1  # behind the cord (a spinous process)
    discs[100:117, 38:50, 25:29] = 1  # 70 mm beside the cord
    assert len(find_discs(discs, cord, SPACING)) == 4
    discs[30, :, :] = 0  # every disc cut in two halves, left and right: still one disc per level
    assert len(find_discs(discs, cord, SPACING)) == 4
    discs[:, :, 81:83] = 0  # a disc cut in two halves, top and bottom (1 mm apart): one disc
    assert len(find_discs(discs, cord, SPACING)) == 4


def test_a_missed_disc_is_restored_in_its_gap() -> None:
    discs, cord = _spine([110, 92, 74, 38, 20])  # the disc at 56 is missing
    heights = find_discs(discs, cord, SPACING)
    assert len(heights) == 6 and abs(heights[3] - 55.5) < 0.01


def _c2(shape: tuple[int, int, int], bottom: int, top: int) -> np.ndarray:
    """C2 in front of the cord from slice ``bottom`` to ``top`` (inclusive)."""
    c2 = np.zeros(shape, np.uint8)
    c2[24:37, 38:52, bottom : top + 1] = 1
    return c2


def test_levels_are_named_from_c2_and_the_joint_above_it_starts_c1() -> None:
    # discs at 116 (above the dens), 90 (the atlanto-axial joint), 64 (C2-C3), 46, 28; C2 fills 66..88 and
    # the model also marks a little of C3
    discs, cord = _spine([116, 90, 64, 46, 28])
    c2 = _c2(discs.shape, 66, 88) | _c2(discs.shape, 50, 52)
    assert find_c2(find_discs(discs, cord, SPACING), c2, cord, SPACING) == 2
    heights, levels = vertebral_levels(discs, c2, cord, SPACING)
    np.testing.assert_allclose(heights, [63.5, 45.5, 27.5])
    assert levels[30, 30, 80] == 2 and levels[30, 30, 55] == 3 and levels[30, 30, 40] == 4 and levels[30, 30, 10] == 5
    assert levels[30, 30, 95] == 1 and levels[30, 30, 119] == 1  # above the joint: C1
    assert levels[0, 0, 80] == 0  # outside the cord


def test_c2_above_the_top_disc_names_it_c2_c3() -> None:
    discs, cord = _spine([46, 28])  # a crop whose top holds C2
    heights, levels = vertebral_levels(discs, _c2(discs.shape, 50, 119), cord, SPACING)
    np.testing.assert_allclose(heights, [45.5, 27.5])
    assert levels[30, 30, 100] == 2 and levels[30, 30, 40] == 3


def test_without_c2_nothing_is_named() -> None:
    discs, cord = _spine([100, 82, 64])
    heights, levels = vertebral_levels(discs, np.zeros_like(discs), cord, SPACING)
    assert heights == [] and not levels.any()
    assert not level_map_from_discs([], cord).any()  # no disc: no level
