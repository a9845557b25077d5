"""The real-scan speed benchmark (``lesionseg benchmark --real-scans DIR``): ``lesionseg infer`` as a user runs
it, in fresh processes, on the whole-field-of-view scans of ``DIR`` (``../shared/data/real-fullfov``):

- one whole-neck axial scan end to end (process start to exit: imports, model loading, the scan, its outputs);
- every whole-neck axial scan in one batch (seconds per scan from the summary, and wall time per scan);

each with the default engine (``auto``: ONNX Runtime for the shipped models) and with PyTorch. The scan's own
seconds come from the batch summary, so ``end to end - scan`` is what a process spends before and after it.
Writes ``real-scans.json`` and ``real-scans.md``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lesionseg.errors import LesionsegError
from lesionseg.outputs.tables import read_csv

#: The whole-neck axial stacks (256 x 256 x 22 and 192 x 192 x 22, 0.9 x 0.9 x 5 mm).
WHOLE_NECK = "sub-*_acq-MT*_MTS.nii.gz"
ENGINES = ("auto", "torch")


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def infer_seconds(scans: list[Path], out: Path, engine: str) -> tuple[float, list[float]]:
    """Wall seconds of ``python -m lesionseg infer SCANS --out OUT --engine ENGINE`` and each scan's seconds.

    Raises:
        LesionsegError: the command failed.
    """
    command = [sys.executable, "-m", "lesionseg", "infer", *map(str, scans), "--out", str(out), "--engine", engine]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", timeout=1800, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise LesionsegError(f"benchmark: {' '.join(command[1:4])} failed ({result.stderr.strip().splitlines()[-1:]})")
    _, rows = read_csv(out / "summary.csv")
    return wall, [float(row["seconds"]) for row in rows]


def run_real_scans(fullfov: Path, out: Path, *, repeats: int = 3, log: Any = print) -> dict[str, Any]:
    """Both measurements for each engine, ``repeats`` times each (median, min, max); JSON and Markdown in ``out``.

    Raises:
        LesionsegError: no whole-neck axial scan in ``fullfov``, or a run failed.
    """
    scans = sorted(Path(fullfov).glob(WHOLE_NECK))
    if not scans:
        raise LesionsegError(f"{fullfov}: no whole-neck axial scans ({WHOLE_NECK})")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"single_scan": scans[0].name, "batch_scans": [s.name for s in scans], "engines": {}}
    for engine in ENGINES:
        single, scan_only, batch_wall, per_scan = [], [], [], []
        for index in range(repeats):
            wall, seconds = infer_seconds(scans[:1], out / f"{engine}-single-{index}", engine)
            single.append(wall)
            scan_only.append(seconds[0])
            wall, seconds = infer_seconds(scans, out / f"{engine}-batch-{index}", engine)
            batch_wall.append(wall / len(scans))
            per_scan.append(statistics.median(seconds))
        results["engines"][engine] = {
            "single_end_to_end_s": _stats(single), "single_scan_s": _stats(scan_only),
            "single_outside_scan_s": _stats([a - b for a, b in zip(single, scan_only, strict=True)]),
            "batch_median_scan_s": _stats(per_scan), "batch_wall_per_scan_s": _stats(batch_wall),
        }
        log(f"{engine}: {json.dumps(results['engines'][engine])}")
    (out / "real-scans.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "real-scans.md").write_text(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    """The table of :func:`run_real_scans` (medians, min-max)."""

    def cell(entry: dict[str, float]) -> str:
        return f"{entry['median']:.2f} ({entry['min']:.2f}-{entry['max']:.2f})"

    lines = [
        f"One scan: {results['single_scan']}; batch: {len(results['batch_scans'])} whole-neck axial scans.",
        "",
        "| engine | one scan, end to end s | of which the scan s | before and after it s | batch: s per scan "
        "(median) | batch: wall s / scans |",
        "|---|---|---|---|---|---|",
    ]
    for engine, entry in results["engines"].items():
        lines.append(f"| {engine} | {cell(entry['single_end_to_end_s'])} | {cell(entry['single_scan_s'])} | "
                     f"{cell(entry['single_outside_scan_s'])} | {cell(entry['batch_median_scan_s'])} | "
                     f"{cell(entry['batch_wall_per_scan_s'])} |")
    return "\n".join(lines) + "\n"
