"""The report's lesion table: a lesion that spans levels shows its share of each."""

from __future__ import annotations

import numpy as np

from lesionseg.inference.lesions import lesion_table
from lesionseg.reporting.inference_html import _lesion_rows


def test_a_lesion_across_a_disc_shows_its_share_of_each_level() -> None:
    mask = np.zeros((12, 12, 40), dtype=np.uint8)
    mask[4:6, 4:6, 32:34] = 1  # C7 only
    mask[7:9, 7:9, 18:23] = 1  # 3 slices in T1, 2 in T2
    levels = np.zeros_like(mask, dtype=np.int32)
    for first, value in ((10, 9), (20, 8), (30, 7)):
        levels[3:9, 3:9, first:first + 10] = value
    rows = _lesion_rows(lesion_table(mask, np.eye(4), levels=levels)).splitlines()
    assert "<td>1</td><td>C7</td>" in rows[1]
    assert "<td>2</td><td>T1 60%, T2 40%</td>" in rows[2]
