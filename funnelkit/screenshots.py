"""Screenshots of the HTML reports, as a reader without network sees them, for review.

``python -m funnelkit.screenshots [REPORTS] [OUT] [--open]`` (``make screenshots``)
renders every ``*.html`` of a reports folder (default ``reports/``) in headless
Chromium and writes two PNGs per page into ``OUT`` (default ``screenshots/``
of the project, ignored by git):

- ``<name>-screen.png``: the first screen, 1280×800, what a reader sees on
  opening the file;
- ``<name>-full.png``: the whole page, 1280 wide (capped at
  :data:`MAX_HEIGHT` px; the height is measured in a first pass);
- with ``--open``, also ``<name>-open.png``: the whole page with every
  ``<details>`` opened (Method sections, long tables), to review what the
  folds hide.

Chromium runs with every host name unresolvable (``--host-resolver-rules``):
a page that still needed a CDN (maths, a script, a font) shows it in the
screenshot instead of being rescued by the network of the reviewer's machine.
Debian's package is ``chromium``; the binary is looked up on ``PATH`` as
``chromium``, then ``chromium-browser``.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from funnelkit.errors import FunnelkitError

__all__ = ["MAX_HEIGHT", "SCREEN", "find_chromium", "main", "page_height", "screenshot_reports"]

#: Width and height of the first screen, px.
SCREEN = (1280, 800)
#: Tallest full-page screenshot, px (Chromium's compositor and image viewers struggle beyond).
MAX_HEIGHT = 16_000
_BINARIES = ("chromium", "chromium-browser")
_TIMEOUT_S = 180
_HEIGHT_TITLE = re.compile(r"<title>funnelkit-height:(\d+)</title>")
# Written into a temporary copy of the page: the title carries the height once the page has loaded
_MEASURE = ("<script>window.addEventListener('load', () => { document.title = 'funnelkit-height:' + "
            "Math.ceil(document.documentElement.scrollHeight); });</script>")
_OPEN = "<script>document.querySelectorAll('details').forEach((fold) => { fold.open = true; });</script>"


def find_chromium() -> str:
    """Path of the Chromium binary on ``PATH``.

    Raises
    ------
    FunnelkitError
        When neither ``chromium`` nor ``chromium-browser`` is found, saying what to install.
    """
    for name in _BINARIES:
        path = shutil.which(name)
        if path:
            return path
    raise FunnelkitError(
        "screenshots need headless Chromium, and neither `chromium` nor `chromium-browser` is on PATH: "
        "install it (Debian/Ubuntu: `sudo apt-get install chromium`) and run again"
    )


def _run(chromium: str, args: list[str], profile: str) -> str:
    """Run headless Chromium offline with ``args``; its stdout."""
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={profile}",
        # offline: no host name resolves, so nothing from a CDN can render
        "--host-resolver-rules=MAP * ~NOTFOUND",
        *args,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as error:
        raise FunnelkitError(f"Chromium did not finish in {_TIMEOUT_S} s: {' '.join(args)}") from error
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise FunnelkitError(f"Chromium failed (exit {done.returncode}) on {' '.join(args)}:\n{tail}")
    return done.stdout


def _copy(html: Path, folder: str, *scripts: str) -> Path:
    """A copy of ``html`` in ``folder`` with ``scripts`` appended (run after the page's own content)."""
    copy = Path(folder) / html.name
    copy.write_text(html.read_text(encoding="utf-8") + "".join(scripts), encoding="utf-8")
    return copy


def page_height(html: str | Path, *, chromium: str | None = None, width: int = SCREEN[0],
                open_details: bool = False) -> int:
    """Height in px of the page ``html`` laid out ``width`` px wide, once loaded.

    A temporary copy of the page gets a script that writes
    ``document.documentElement.scrollHeight`` into its title; Chromium's
    ``--dump-dom`` prints the DOM after the load event. With ``open_details``,
    every ``<details>`` is opened first.
    """
    chromium = chromium or find_chromium()
    html = Path(html)
    with tempfile.TemporaryDirectory(prefix="funnelkit-shot-") as folder:
        copy = _copy(html, folder, *([_OPEN] if open_details else []), _MEASURE)
        dom = _run(chromium, [f"--window-size={width},{SCREEN[1]}", "--dump-dom", copy.as_uri()],
                   str(Path(folder) / "profile"))
    found = _HEIGHT_TITLE.search(dom)
    if not found:
        raise FunnelkitError(f"could not measure the height of {html}: the page did not finish loading")
    return int(found.group(1))


def _screenshot(chromium: str, html: Path, png: Path, height: int, open_details: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="funnelkit-shot-") as folder:
        page = _copy(html, folder, _OPEN) if open_details else html.resolve()
        _run(chromium, [f"--window-size={SCREEN[0]},{height}", f"--screenshot={png.resolve()}", page.as_uri()],
             str(Path(folder) / "profile"))
    if not png.is_file():
        raise FunnelkitError(f"Chromium wrote no screenshot of {html} to {png}")


def screenshot_reports(reports: str | Path, out: str | Path, *, max_height: int = MAX_HEIGHT,
                       open_details: bool = False) -> list[Path]:
    """Write the first screen and the full page of every ``*.html`` of ``reports`` as PNGs into ``out``.

    Parameters
    ----------
    reports : path
        Folder of HTML reports (only its top level is read).
    out : path
        Folder for ``<name>-screen.png`` (1280×800) and ``<name>-full.png``
        (1280 × page height, at most ``max_height``); created if missing.
    max_height : int
        Cap on the full-page height, px.
    open_details : bool
        Also write ``<name>-open.png``, the full page with every ``<details>`` open.

    Returns
    -------
    list of Path
        The PNGs written, two (three with ``open_details``) per page, in the order of the pages' names.

    Raises
    ------
    FunnelkitError
        Chromium is not installed or fails, or ``reports`` holds no HTML page.
    """
    chromium = find_chromium()
    reports, out = Path(reports), Path(out)
    pages = sorted(reports.glob("*.html"))
    if not pages:
        raise FunnelkitError(f"no *.html in {reports}: run `make reports` (or `funnelkit run`) first")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in pages:
        screen, full = out / f"{page.stem}-screen.png", out / f"{page.stem}-full.png"
        _screenshot(chromium, page, screen, SCREEN[1])
        height = min(max(page_height(page, chromium=chromium), SCREEN[1]), max_height)
        _screenshot(chromium, page, full, height)
        written += [screen, full]
        if open_details:
            opened = out / f"{page.stem}-open.png"
            height = min(max(page_height(page, chromium=chromium, open_details=True), SCREEN[1]), max_height)
            _screenshot(chromium, page, opened, height, open_details=True)
            written.append(opened)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m funnelkit.screenshots [REPORTS] [OUT]``; returns the exit code."""
    from funnelkit.runner import project_root

    root = project_root()
    parser = argparse.ArgumentParser(prog="python -m funnelkit.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="?", type=Path, default=root / "reports",
                        help="folder of HTML reports (default: reports/ of the project)")
    parser.add_argument("out", nargs="?", type=Path, default=root / "screenshots",
                        help="folder for the PNGs (default: screenshots/ of the project)")
    parser.add_argument("--open", action="store_true",
                        help="also <name>-open.png: the full page with every <details> opened")
    args = parser.parse_args(argv)
    try:
        written = screenshot_reports(args.reports, args.out, open_details=args.open)
    except FunnelkitError as error:
        print(f"funnelkit screenshots: {error}", file=sys.stderr)
        return 2
    print(f"funnelkit screenshots: {len(written)} PNGs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
