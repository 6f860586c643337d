#!/usr/bin/env python
"""Render a report in real headless Chromium and save a screenshot, to look at what users see.

Usage: python scripts/render_report.py REPORT.html [--out report.png] [--width 1280] [--height 2400]

Needs Debian's ``chromium`` (``apt-get install -y chromium``) or ``chromium-browser`` /
``google-chrome`` on PATH. Runs offline with a throwaway profile; exits non-zero if no
screenshot was written.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def render(html: Path, out: Path, width: int, height: int, timeout: float = 120.0) -> Path:
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        raise SystemExit("no chromium on PATH: apt-get install -y chromium")
    out = out.resolve()
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="smart-cli-chromium-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not out.is_file():
        sys.stderr.write(proc.stderr[-2000:])
        raise SystemExit(f"chromium wrote no screenshot (exit {proc.returncode})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: next to the HTML)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    if not args.html.is_file():
        raise SystemExit(f"not found: {args.html}")
    out = render(args.html, args.out or args.html.with_suffix(".png"), args.width, args.height)
    print(out)


if __name__ == "__main__":
    main()
