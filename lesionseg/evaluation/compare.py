"""Side-by-side comparison of several prediction folders on the same ground truth, with paired statistics.

For each metric, every run is compared with the first (the baseline) on the images both evaluated: mean of
each, mean paired difference (run - baseline) and the two-sided Wilcoxon signed-rank p-value (SciPy). The
p-value is NaN when there are fewer than two pairs or every difference is zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

from lesionseg.evaluation.evaluate import EvaluationReport

DEFAULT_METRICS = ("dice", "hd95_mm", "anima_sensitivity", "anima_ppv", "anima_f1", "anima_fp_pred")


@dataclass(frozen=True)
class ComparisonRow:
    """One metric of one run against the baseline."""

    metric: str
    baseline: str
    run: str
    n_pairs: int
    baseline_mean: float
    run_mean: float
    mean_difference: float
    wilcoxon_p: float


def _paired(baseline: EvaluationReport, run: EvaluationReport, metric: str) -> tuple[np.ndarray, np.ndarray]:
    base_values = {i.stem: i.value(metric) for i in baseline.images}
    pairs = [
        (base_values[i.stem], v)
        for i in run.images
        if (v := i.value(metric)) is not None and base_values.get(i.stem) is not None
        and not math.isnan(v) and not math.isnan(base_values[i.stem])
    ]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    array = np.asarray(pairs, dtype=float)
    return array[:, 0], array[:, 1]


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (NaN when undefined)."""
    if len(differences) < 2 or not np.any(differences != 0):
        return math.nan
    return float(wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue)


def compare_reports(
    reports: dict[str, EvaluationReport], metrics: Sequence[str] = DEFAULT_METRICS
) -> list[ComparisonRow]:
    """Compare every run with the first one in ``reports`` (insertion order), metric by metric."""
    names = list(reports)
    baseline_name = names[0]
    rows: list[ComparisonRow] = []
    for metric in metrics:
        for name in names[1:]:
            base, run = _paired(reports[baseline_name], reports[name], metric)
            rows.append(
                ComparisonRow(
                    metric=metric,
                    baseline=baseline_name,
                    run=name,
                    n_pairs=len(base),
                    baseline_mean=float(base.mean()) if len(base) else math.nan,
                    run_mean=float(run.mean()) if len(run) else math.nan,
                    mean_difference=float((run - base).mean()) if len(base) else math.nan,
                    wilcoxon_p=wilcoxon_p(run - base),
                )
            )
    return rows
