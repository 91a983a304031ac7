"""LaTeX in a report's Markdown, rendered to MathML when the report is exported.

A report is one HTML file read offline (mailed, archived, opened on a train):
it cannot load MathJax from a CDN, so the maths of the Method sections is
converted at export, by :func:`latex_to_mathml` (latex2mathml, pure Python),
into MathML, which browsers render natively (MathML Core: Chromium, Firefox,
Safari). :class:`MathMLRenderer` is nbconvert's Markdown renderer with its
maths hooks replaced: nbconvert's parser finds ``$…$``, ``$$…$$``, ``\\(…\\)``,
``\\[…\\]`` and ``\\begin{env}…\\end{env}`` outside code spans and blocks, and
hands the LaTeX to the renderer, which by default writes it back for MathJax.

What stays text:

- ``$`` in code (the parser never looks inside code spans or blocks) and an
  escaped ``\\$``;
- a ``$…$`` span whose content starts or ends with a space, as in "costs $5
  and $10" (pandoc's rule for dollar maths: TeX written as maths never has
  one there, prices do);
- LaTeX that latex2mathml cannot convert: it is left as ``$…$`` text with a
  warning, so that the offline test of the reports (unrendered ``$…$`` in a
  text node) names it instead of the page showing a half-converted formula.
"""
from __future__ import annotations

import re
import warnings
from html import unescape
from xml.etree.ElementTree import tostring

from latex2mathml.converter import convert_to_element
from nbconvert.filters.markdown_mistune import IPythonRenderer

__all__ = ["MathMLRenderer", "latex_to_mathml"]

# TeX operator names latex2mathml leaves as raw text (``<mi>\arg</mi>``): spelled as \operatorname{...}
_UNKNOWN_OPERATORS = re.compile(r"\\(arg)(?![A-Za-z])")
# latex2mathml writes MathML 3's named spaces (\, \! ...), which MathML Core (Chromium) ignores: lengths instead
_NAMED_SPACES = {
    "veryverythinmathspace": "0.0556em",
    "verythinmathspace": "0.1111em",
    "thinmathspace": "0.1667em",
    "mediummathspace": "0.2222em",
    "thickmathspace": "0.2778em",
    "verythickmathspace": "0.3333em",
    "veryverythickmathspace": "0.3889em",
}
_NAMED_SPACE = re.compile(r"(negative)?(" + "|".join(_NAMED_SPACES) + r")")
_COMMAND = re.compile(r"\\[A-Za-z]+")


def _length(value: str) -> str:
    """``value`` with a MathML 3 named space ("negativethinmathspace") as a length ("-0.1667em")."""
    named = _NAMED_SPACE.fullmatch(value)
    if not named:
        return value
    return ("-" if named.group(1) else "") + _NAMED_SPACES[named.group(2)]


def latex_to_mathml(tex: str, *, display: bool = False) -> str:
    """Convert one LaTeX formula (without its ``$`` delimiters) to a MathML ``<math>`` element.

    Parameters
    ----------
    tex : str
        The formula, e.g. ``r"\\hat\\beta = \\arg\\min_\\beta \\lVert y - X\\beta\\rVert^2"``.
    display : bool
        A display formula (``$$…$$``: centred, on its own line) rather than inline.

    Returns
    -------
    str
        ``<math display="inline|block" alttext="…">…</math>``; the ``alttext`` keeps the
        LaTeX for screen readers and copy-paste.

    Raises
    ------
    ValueError
        When latex2mathml cannot parse the formula or leaves a command it does
        not know as raw text (it would show as ``\\foo`` inside the formula).
    """
    source = _UNKNOWN_OPERATORS.sub(r"\\operatorname{\1}", tex)
    try:
        root = convert_to_element(source, display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises many types (its own, IndexError...) on malformed input
        raise ValueError(f"cannot convert the LaTeX {tex!r} to MathML: {error}") from error
    for element in root.iter():
        # latex2mathml stores symbols as entity strings ("&#x003B2;") beside literal source text
        # ("<" of \text{a<b}) and unescapes its whole output, which would leave that "<" as markup:
        # decode the entities into characters and let ElementTree escape what must be
        element.text = unescape(element.text) if element.text else element.text
        element.tail = unescape(element.tail) if element.tail else element.tail
        leftover = _COMMAND.search(element.text or "")
        if leftover:
            raise ValueError(f"cannot convert the LaTeX {tex!r} to MathML: {leftover.group()} is not supported")
        for name, value in element.attrib.items():
            element.set(name, _length(value))
    root.set("alttext", tex.strip())
    return tostring(root, encoding="unicode")


_PRICE_RANGE = re.compile(r"^\d[\d.,]*\s*[–—-]$")


class MathMLRenderer(IPythonRenderer):
    """nbconvert's Markdown renderer, with maths written as MathML instead of left for MathJax."""

    def _mathml(self, tex: str, display: bool) -> str | None:
        try:
            return latex_to_mathml(tex, display=display)
        except ValueError as error:
            warnings.warn(f"{error}; left as text", stacklevel=2)
            return None

    def block_math(self, body: str) -> str:
        """``$$…$$`` and ``\\[…\\]``: a display formula."""
        return self._mathml(body, display=True) or super().block_math(body)

    def inline_math(self, body: str) -> str:
        """``$…$`` and ``\\(…\\)``: an inline formula, unless the span is prose between two prices.

        Pandoc's other rule (no digit right after the closing dollar) needs the
        character after the span, which the renderer does not see: a price range
        written "$12.50–$14" is caught by its shape (a number then a dash) instead.
        """
        if body != body.strip() or _PRICE_RANGE.match(body):
            # "$5 and $10": pandoc's rule, no space inside the dollars of a formula
            return f"${self.escape_html(body)}$"
        return self._mathml(body, display=False) or super().inline_math(body)

    def latex_environment(self, name: str, body: str) -> str:
        """``\\begin{aligned}…\\end{aligned}`` and the like: a display formula."""
        tex = f"\\begin{{{name}}}{body}\\end{{{name}}}"
        return self._mathml(tex, display=True) or super().latex_environment(name, body)
