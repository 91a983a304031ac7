"""The HTML of a report: one file that reads offline, with its Method and long tables folded.

:func:`funnelkit.report.export_html` prepares the executed notebook and hands it
to :class:`ReportExporter`, nbconvert's ``lab`` HTML exporter with:

- **nothing loaded from the network**: the template's require.js, MathJax and
  mermaid ``<script>`` blocks are left out (no report has widgets, JavaScript
  outputs or diagrams), and the maths of the Markdown is MathML written at
  export (:mod:`funnelkit.math_render`). Styles are inlined by nbconvert and
  images embedded as ``data:`` URIs already;
- **folds**: :func:`fold_sections` puts every section whose heading starts with
  "Method" in a ``<details>`` closed by default, its heading as the
  ``<summary>``, down to the next heading of the same or a higher level;
  :func:`fold_long_tables` puts every table output with more than
  :data:`LONG_TABLE_ROWS` body rows in a ``<details>`` whose summary says how
  many rows and which columns. A reader sees the findings first and opens the
  derivation or the full table when they want it.

Both folds work on a copy of the notebook (cell metadata read by the template,
table outputs wrapped), never on the notebooks in ``notebooks/``.
"""
from __future__ import annotations

import copy
import re
from html import escape
from html.parser import HTMLParser

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import MarkdownWithMath

from funnelkit.math_render import MathMLRenderer

try:  # jinja2 < 3.1
    from jinja2 import contextfilter
except ImportError:
    from jinja2 import pass_context as contextfilter

__all__ = ["FOLD_KEY", "LONG_TABLE_ROWS", "ReportExporter", "fold_long_tables", "fold_sections"]

#: Tables with more body rows than this are folded (20: notebook 01's data-quality table, 16 rows, stays open).
LONG_TABLE_ROWS = 20
#: Cell metadata key read by the template: ``{"close": n, "summary": bool}``; notebook metadata: ``{"close": n}``.
FOLD_KEY = "funnelkit_fold"
_FOLDED_TITLE = re.compile(r"Method")
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TABLE_COLUMNS_SHOWN = 4

_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}
{#- A report is read offline: no script from a CDN. MathJax is not needed (MathML written at export);
    require.js, the widget manager and mermaid serve outputs no report has. -#}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
details.funnelkit-fold, details.funnelkit-table { margin: 0.5em 0; }
details.funnelkit-fold > summary { cursor: pointer; padding: 0 var(--jp-cell-padding, 5px); }
details.funnelkit-fold > summary > :is(h1, h2, h3, h4, h5, h6) { display: inline; }
details.funnelkit-fold > summary > :is(h1, h2, h3, h4, h5, h6)::after { content: "  (click to open)";
  font-size: var(--jp-content-font-size1, 14px); font-weight: normal; color: #57606a; }
details.funnelkit-fold[open] > summary > :is(h1, h2, h3, h4, h5, h6)::after { content: none; }
details.funnelkit-table > summary { cursor: pointer; color: #0550ae; }
math[display="block"] { margin: 0.6em 0; }
</style>
{%- endblock extra_css -%}
{%- block any_cell scoped -%}
{%- set fold = cell.metadata.get('""" + FOLD_KEY + r"""', {}) -%}
{{- '</details>' * fold.get('close', 0) -}}
{%- if fold.get('summary') -%}
<details class="funnelkit-fold"><summary class="jp-RenderedHTMLCommon jp-RenderedMarkdown">
{{- cell.source | markdown2html -}}
</summary>
{%- else -%}
{{- super() -}}
{%- endif -%}
{%- endblock any_cell -%}
{%- block body_footer -%}
{{- '</details>' * nb.metadata.get('""" + FOLD_KEY + r"""', {}).get('close', 0) -}}
{{- super() -}}
{%- endblock body_footer -%}
{%- block data_latex scoped -%}
<div class="jp-RenderedLatex jp-OutputArea-output {{ extra_class }}" data-mime-type="text/latex">
{{ output.data['text/latex'] | markdown2html }}
</div>
{%- endblock data_latex -%}
"""


class ReportExporter(HTMLExporter):
    """nbconvert's ``lab`` HTML exporter for reports: offline, maths as MathML, folds.

    Takes the same options as :class:`nbconvert.HTMLExporter`; the template is
    this module's (it extends ``lab``'s ``index.html.j2``). Cells and outputs of
    ``text/latex`` go through the same Markdown renderer, so ``$…$`` in them is
    MathML too.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("template_name", "lab")
        super().__init__(raw_template=_TEMPLATE, **kwargs)

    @contextfilter
    def markdown2html(self, context, source):
        """Markdown to HTML, as nbconvert's own filter but with :class:`MathMLRenderer`."""
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False,
            attachments=cell.get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)


# --------------------------------------------------------------------------- sections


def _pieces(source: str) -> list[tuple[int | None, str, str]]:
    """Split Markdown at its ATX headings (``## Title``) outside fenced code.

    Returns ``(level, title, text)`` per piece: a heading line with the text
    down to the next heading, and first, when the source does not start with
    a heading, ``(None, "", text)``. Setext headings (underlined) are not
    split on: the notebooks write ATX headings.
    """
    pieces: list[tuple[int | None, str, list[str]]] = [(None, "", [])]
    fence = None
    for line in source.splitlines(keepends=True):
        opened = _FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)[0]
        elif fence is not None and opened and opened.group(1)[0] == fence:
            fence = None
        elif fence is None and (heading := _ATX.match(line.rstrip("\n"))):
            pieces.append((len(heading.group(1)), heading.group(2), [line]))
            continue
        pieces[-1][2].append(line)
    return [(level, title, "".join(lines)) for level, title, lines in pieces if level is not None or "".join(lines).strip()]


def _part(cell: nbformat.NotebookNode, source: str, k: int, **fold) -> nbformat.NotebookNode:
    part = copy.deepcopy(cell)
    part.source = source
    if k and "id" in part:
        part.id = f"{cell.id}-{k}"  # ids must stay unique: the template writes them as HTML ids
    if fold:
        part.metadata[FOLD_KEY] = fold
    return part


def fold_sections(nb: nbformat.NotebookNode, title: re.Pattern = _FOLDED_TITLE) -> nbformat.NotebookNode:
    """Mark every section whose heading text starts with ``title`` ("Method") to be folded.

    The section runs from its heading to the next heading of the same or a
    higher level (or the end of the notebook), over as many cells as it
    spans. A Markdown cell is split where a folded section starts or ends
    inside it, and the heading of a folded section becomes a cell of its own
    (the ``<summary>``). Sections nest: a folded ``###`` inside a folded
    ``##`` is a fold inside the fold.

    Parameters
    ----------
    nb : NotebookNode
        The notebook, changed in place (pass a copy).
    title : re.Pattern
        Matched at the start of the heading's text.

    Returns
    -------
    NotebookNode
        ``nb``, whose cells carry ``metadata[FOLD_KEY] = {"close": n, "summary": True}``
        where folds close (before the cell) and open (the cell is the summary),
        and whose metadata carries ``{"close": n}`` for the folds still open at the end.
    """
    open_levels: list[int] = []
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            cells.append(cell)
            continue
        pieces = _pieces(cell.source)
        if not any(level is not None and (open_levels and level <= open_levels[-1] or title.match(text))
                   for level, text, _ in pieces):
            cells.append(cell)  # no fold starts or ends in this cell: keep it whole
            continue
        parts = []
        for level, text, source in pieces:
            close = 0
            while level is not None and open_levels and level <= open_levels[-1]:
                open_levels.pop()
                close += 1
            if level is not None and title.match(text):
                heading, _, body = source.partition("\n")
                parts.append(_part(cell, heading, len(parts), close=close, summary=True))
                open_levels.append(level)
                if body.strip():
                    parts.append(_part(cell, body, len(parts)))
            else:
                parts.append(_part(cell, source, len(parts), **({"close": close} if close else {})))
        cells.extend(parts)
    nb.cells = cells
    if open_levels:
        nb.metadata[FOLD_KEY] = {"close": len(open_levels)}
    return nb


# --------------------------------------------------------------------------- tables


class _TableShape(HTMLParser):
    """Body rows, header texts and caption of each top-level ``<table>`` of an HTML fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self._depth = 0
        self._where: list[str] = []  # open thead/tbody/tr/th/caption of the current top-level table
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self.tables.append({"rows": 0, "columns": [], "caption": "", "header_rows": 0})
            return
        if self._depth != 1:
            return
        table = self.tables[-1]
        if tag in ("thead", "tbody", "caption"):
            self._where.append(tag)
        elif tag == "tr":
            if "thead" in self._where:
                table["header_rows"] += 1
            else:
                table["rows"] += 1  # a pandas table without <tbody> still has its rows
        if tag in ("th", "caption"):
            self._text = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._depth -= 1
            self._where = [] if self._depth == 0 else self._where
            return
        if self._depth != 1:
            return
        table = self.tables[-1]
        if tag in ("thead", "tbody", "caption") and tag in self._where:
            self._where.remove(tag)
        if tag in ("th", "caption") and self._text is not None:
            text = " ".join("".join(self._text).split())
            if tag == "caption":
                table["caption"] = text
            elif "thead" in self._where and table["header_rows"] == 1 and text:
                table["columns"].append(text)
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def _summary(table: dict) -> str:
    columns = table["columns"][:_TABLE_COLUMNS_SHOWN]
    more = ", …" if len(table["columns"]) > _TABLE_COLUMNS_SHOWN else ""
    what = f"{table['caption']}: show" if table["caption"] else "Show"
    listed = f" ({', '.join(columns)}{more})" if columns else ""
    return escape(f"{what} all {table['rows']:,} rows{listed}")


def fold_long_tables(nb: nbformat.NotebookNode, max_rows: int = LONG_TABLE_ROWS) -> nbformat.NotebookNode:
    """Wrap every HTML output holding a table of more than ``max_rows`` body rows in a closed ``<details>``.

    The summary reads "Show all 45 rows (step, driver, odds ratio, …)" (the
    caption first when the table has one): a reader knows what is folded
    without opening it. The whole output is folded, its ``<style>`` included.

    Parameters
    ----------
    nb : NotebookNode
        The notebook, changed in place (pass a copy).
    max_rows : int
        Longest table left open.

    Returns
    -------
    NotebookNode
        ``nb``.
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            html = output.get("data", {}).get("text/html")
            if not html:
                continue
            html = "".join(html) if isinstance(html, list) else html
            shape = _TableShape()
            shape.feed(html)
            shape.close()
            long = [table for table in shape.tables if table["rows"] > max_rows]
            if long:
                longest = max(long, key=lambda table: table["rows"])
                output.data["text/html"] = (f'<details class="funnelkit-table"><summary>{_summary(longest)}</summary>\n'
                                            f"{html}\n</details>")
    return nb
