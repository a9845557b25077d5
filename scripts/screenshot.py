"""Render an HTML page in headless Chromium and save a PNG screenshot (checks that reports render).

Usage::

    python scripts/screenshot.py demo-output/pred/sub-002_T2w_report.html docs/report-example.png [--width 1200 --height 1800]

Needs Debian's ``chromium`` (``apt-get install chromium``); exits 2 with a message when it is not installed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)


def screenshot(page: Path, png: Path, *, width: int = 1200, height: int = 1800) -> Path:
    """Screenshot ``page`` into ``png`` with headless Chromium.

    Raises:
        FileNotFoundError: Chromium is not installed.
        RuntimeError: Chromium did not write the picture.
    """
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             f"--screenshot={png.resolve()}", page.resolve().as_uri()],
            capture_output=True, timeout=120, check=False,
        )
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot of {page}")
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1800)
    args = parser.parse_args()
    try:
        print(screenshot(args.page, args.png, width=args.width, height=args.height))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
