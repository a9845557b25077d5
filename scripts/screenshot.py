"""Render an HTML page in headless Chromium and save a PNG screenshot (checks that reports render).

Usage::

    python scripts/screenshot.py demo-output/pred/sub-002_T2w_report.html docs/report-viewer.png [--width 1200 --height 1800 --lesion 1 --full-page]

Needs Debian's ``chromium`` (``apt-get install chromium``); exits 2 with a message when it is not installed.
With Playwright (``pip install -e '.[dev]'``) it waits for a report's interactive viewer to start (WebGL in
software, SwiftShader) and can click a lesion row first (``--lesion N``) and take the whole page (``--full-page``).
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


def viewer_screenshot(page: Path, png: Path, *, width: int = 1200, height: int = 1800, lesion: int | None = None,
                      full_page: bool = False) -> Path:
    """Screenshot a report with Playwright driving Chromium, once its viewer has started (or failed)."""
    from playwright.sync_api import sync_playwright

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    flags = [flag for flag in FLAGS if flag != "--headless"] + ["--enable-unsafe-swiftshader", "--use-angle=swiftshader"]
    with sync_playwright() as session:
        browser = session.chromium.launch(executable_path=browser_path, args=flags)
        view = browser.new_page(viewport={"width": width, "height": height})
        view.goto(page.resolve().as_uri())
        if view.locator("#viewer").count():
            view.wait_for_function("document.getElementById('viewer').dataset.ready !== 'false'", timeout=60000)
        if lesion is not None:
            view.click(f"tr[data-lesion='{lesion}']")
            view.evaluate("() => window.scrollTo(0, 0)")
        png.parent.mkdir(parents=True, exist_ok=True)
        view.screenshot(path=str(png), full_page=full_page)
        browser.close()
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1800)
    parser.add_argument("--lesion", type=int, default=None, help="click this lesion's row first (Playwright)")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not the window (Playwright)")
    args = parser.parse_args()
    try:
        import playwright  # noqa: F401
    except ImportError:
        playwright = None
    try:
        if playwright is None:
            print(screenshot(args.page, args.png, width=args.width, height=args.height))
        else:
            print(viewer_screenshot(args.page, args.png, width=args.width, height=args.height, lesion=args.lesion,
                                    full_page=args.full_page))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
