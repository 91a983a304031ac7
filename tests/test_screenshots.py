"""Screenshots of reports in headless Chromium (funnelkit.screenshots)."""
import shutil
import struct

import pytest

from funnelkit import screenshots
from funnelkit.errors import FunnelkitError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium)")

PAGE_HEIGHT = 2345  # px: a block of this height on a page without margins


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def reports(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "tiny.html").write_text(
        "<!DOCTYPE html><html><head><title>tiny</title><style>html, body { margin: 0; }</style></head>"
        f'<body><div style="height: {PAGE_HEIGHT}px; background: linear-gradient(#fff, #06c)">Tiny report</div>'
        "<details><summary>folded</summary><div style='height: 500px'>inside</div></details></body></html>",
        encoding="utf-8")
    (folder / "notes.txt").write_text("not a page")
    return folder


@needs_chromium
def test_first_screen_and_full_page_are_written_at_their_sizes(reports, tmp_path):
    out = tmp_path / "shots"
    assert screenshots.main([str(reports), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["tiny-full.png", "tiny-screen.png"]
    assert png_size(out / "tiny-screen.png") == screenshots.SCREEN
    summary_line = png_size(out / "tiny-full.png")[1] - PAGE_HEIGHT  # the closed <details> shows its summary only
    assert png_size(out / "tiny-full.png")[0] == 1280 and 10 <= summary_line <= 40


@needs_chromium
def test_open_details_shows_the_folds_and_the_height_is_capped(reports, tmp_path):
    written = screenshots.screenshot_reports(reports, tmp_path / "a", open_details=True)
    assert [p.name for p in written] == ["tiny-screen.png", "tiny-full.png", "tiny-open.png"]
    closed, opened = png_size(written[1])[1], png_size(written[2])[1]
    assert opened - closed == 500  # the folded block, opened
    capped = screenshots.screenshot_reports(reports, tmp_path / "b", max_height=1000)
    assert png_size(capped[1]) == (1280, 1000)


def test_a_missing_chromium_is_a_clear_error_naming_the_package(reports, tmp_path, monkeypatch):
    monkeypatch.setattr(screenshots.shutil, "which", lambda name: None)
    with pytest.raises(FunnelkitError, match=r"apt-get install chromium"):
        screenshots.screenshot_reports(reports, tmp_path / "shots")
    assert screenshots.main([str(reports), str(tmp_path / "shots")]) == 2
    assert not (tmp_path / "shots").exists()


def test_a_folder_without_pages_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(screenshots.shutil, "which", lambda name: "/usr/bin/chromium")
    with pytest.raises(FunnelkitError, match=r"no \*\.html in .*make reports"):
        screenshots.screenshot_reports(tmp_path, tmp_path / "shots")
