"""What in an HTML page would not render offline: an independent check for the reports' tests.

Written from the HTML and CSS rules, with the standard library's parser, not
from the exporter's code: :func:`offline_problems` lists

- every resource the page would fetch: a ``src`` that is not a ``data:`` URI
  (script, image, frame...), a ``<link href>`` (stylesheet, font preload,
  icon...), ``@import`` and ``url()`` other than ``data:`` or ``#fragment`` in
  a ``<style>`` or a ``style`` attribute, and a URL or ``import()`` inside an
  inline script (a module that loads its code from a CDN);
- every text node outside ``code``/``pre``/``script``/``style``/``math``/
  ``textarea`` that still holds LaTeX for MathJax: ``$$…$$``, ``\\(…\\)``,
  ``\\[…\\]``, ``\\begin{…}``, or ``$…$`` by pandoc's rule for dollar maths
  (no space just inside the dollars, no digit just after the closing one), so
  that "costs $5 and $10" is prose, not maths.

``<a href>`` is navigation, not a resource: links to other reports or CSVs are fine.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP_TEXT = frozenset({"code", "pre", "script", "style", "math", "textarea", "kbd", "samp"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
_CSS_IMPORT = re.compile(r"@import\b[^;]*", re.I)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_SCRIPT_FETCH = re.compile(r"https?://[^\s'\"`)]+|\bimport\s*\(|\bimportScripts\s*\(", re.I)
_MATH = re.compile(
    r"\$\$.+?\$\$"                            # display maths
    r"|\\\(.+?\\\)|\\\[.+?\\\]"               # LaTeX delimiters
    r"|\\begin\{[A-Za-z*]+\}"                 # environments
    r"|(?<![\\$])\$(?=\S)[^$]*?(?<=\S)(?<!\\)\$(?!\d)",  # $x$ by pandoc's rule
    re.S,
)


def _local(url: str) -> bool:
    url = url.strip()
    return url.lower().startswith("data:") or url.startswith("#")


class _Finder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("src") is not None and not _local(attrs["src"]):
            self.problems.append(f"<{tag} src>: {attrs['src']}")
        if tag == "link" and attrs.get("href") and not _local(attrs["href"]):
            self.problems.append(f"<link rel={attrs.get('rel')!r} href>: {attrs['href']}")
        if attrs.get("style"):
            self._css(attrs["style"], f"<{tag} style>")
        if tag not in _VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self._open.pop()

    def handle_endtag(self, tag):
        if tag in self._open:
            while self._open.pop() != tag:  # implicitly closed elements (<p>, <li>...) close with it
                pass

    def _css(self, css: str, where: str):
        for found in _CSS_IMPORT.finditer(css):
            self.problems.append(f"{where} @import: {found.group().strip()}")
        for found in _CSS_URL.finditer(css):
            if not _local(found.group(2)):
                self.problems.append(f"{where} url(): {found.group(2)}")

    def handle_data(self, data):
        inside = self._open[-1] if self._open else ""
        if inside == "style":
            self._css(data, "<style>")
        elif inside == "script":
            for found in _SCRIPT_FETCH.finditer(data):
                self.problems.append(f"<script> fetches: {found.group()}")
        elif not _SKIP_TEXT & set(self._open):
            for found in _MATH.finditer(data):
                self.problems.append(f"unrendered maths in <{inside}>: {found.group()[:80]}")


def offline_problems(html: str) -> list[str]:
    """Everything in ``html`` that needs the network or MathJax to render, one line each (empty: none)."""
    finder = _Finder()
    finder.feed(html)
    finder.close()
    return finder.problems
