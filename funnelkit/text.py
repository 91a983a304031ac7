"""Words and numbers for people: escaping data strings, shares, percentage points, money.

Shared by the studies' ``headline()`` prose and by the presentation layer
(``tables``, ``report``), so that a difference of shares reads the same in every
report. Every string that comes from the data or the params is escaped here
before it enters HTML or Markdown.
"""
from __future__ import annotations

import html
import re

import pandas as pd

#: a typographic minus: "-0.01" reads as a hyphen beside a dash
MINUS = "\u2212"

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")  # "$": it would be read as maths


def escape(value) -> str:
    """HTML-escape a value that came from the data (segment names, event types...)."""
    return html.escape(str(value))


def escape_md(value) -> str:
    """Escape a value from the data for Markdown: HTML characters, then Markdown's own
    (so a step named ``[x](javascript:...)`` stays text, not a link)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False))


def pct(value: float, digits: int = 1) -> str:
    """``12.3%``; ``–`` for a missing value."""
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}%}"


def pct_ci(rate: float, low: float, high: float, digits: int = 1) -> str:
    """``12.3% (95% CI 11.9%–12.7%)``."""
    if pd.isna(rate):
        return "–"
    return f"{pct(rate, digits)} (95% CI {low:.{digits}%}–{high:.{digits}%})"


def duration(value) -> str:
    """A Timedelta or seconds as '45 s', '4.8 min', '2.3 h', '1.5 days'."""
    if value is None or pd.isna(value):
        return "–"
    seconds = value.total_seconds() if isinstance(value, (pd.Timedelta,)) else float(value)
    for limit, size, unit in ((120, 1, "s"), (7200, 60, "min"), (172800, 3600, "h")):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}" if unit == "s" else f"{seconds / size:.1f} {unit}"
    days = seconds / 86400
    return f"{days:.0f} days" if days == round(days) else f"{days:.1f} days"


def points(value: float, *, signed: bool = False) -> str:
    """A difference of two shares in percentage points, as a number: ``0.036``, ``1.2``, ``+0.036``, ``−0.01``.

    Two significant digits below one point (a difference of 0.00036 is ``0.036``, never ``0.04`` nor ``0``),
    one decimal above; ``signed`` writes ``+`` or ``−`` (zero stays ``0``); a negative value always gets
    a real minus sign.
    """
    pp = value * 100
    if pp == 0:
        return "0"
    text = f"{abs(pp):.2g}" if abs(pp) < 1 else f"{abs(pp):,.1f}"
    if signed:
        return ("+" if pp > 0 else MINUS) + text
    return text if pp > 0 else MINUS + text


def money(value: float, currency: str = "", digits: int = 0, markdown: bool = False) -> str:
    """``1,234 EUR``: the amount with ``digits`` decimals, then the currency escaped for HTML (for
    Markdown with ``markdown=True``), since ``data.currency`` is a string from the params file."""
    if value is None or pd.isna(value):
        return "–"
    if not currency:
        return f"{value:,.{digits}f}"
    return f"{value:,.{digits}f} {escape_md(currency) if markdown else escape(currency)}"


def p_value(p: float) -> str:
    """``0.0123``, ``< 0.0001`` (never ``0``: a p-value is never zero), ``–`` when missing."""
    if p is None or pd.isna(p):
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.01 else f"{p:.2f}"


def p_equals(p: float) -> str:
    """``p = 0.03``, ``p < 0.0001`` (:func:`p_value` with its sign)."""
    text = p_value(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def plural(count: int, word: str) -> str:
    """``1 day``, ``2 days``, ``1,234 users`` (English plural by ``s``)."""
    return f"{count:,} {word}" + ("" if count == 1 else "s")
