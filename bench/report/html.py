"""Self-contained HTML pieces: escaped tables, inline PNG figures and the page around them.

Nothing here refers to the network: pictures are ``data:image/png;base64`` URIs, the
stylesheet and scripts are inline (plotly.js once, when a section draws a plotly chart), so
the report opens from disk, offline, as one file.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bench.report.interactive import PAGE_ROWS, PLOTLY_CLASS, TABLE_CSS, TABLE_JS, plotly_js

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The page's content width in CSS px: ``main``'s 1180 px less its padding. A picture wider
#: than this is shrunk to it, and its text with it.
PAGE_PX = 1116
#: Resolution the report's charts are drawn at (PNG pixels per inch).
DPI = 110
#: The widest figure, in inches at :data:`DPI`, that the page shows at its natural size (its
#: PNG is cut to what it draws plus 0.1 inch each side).
PAGE_INCHES = PAGE_PX / DPI - 0.2
#: The smallest text a reader should have to read, in CSS px (issue 14).
MIN_FONT_PX = 9.0

STYLE = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --band: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 40px 0 6px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
.meta { color: var(--muted); margin: 0 0 12px; }
.meta b { color: var(--fg); font-weight: 600; }
.caption { color: var(--muted); margin: 2px 0 12px; max-width: 900px; }
.note { background: #fff8c5; border: 1px solid #d4a72c66; padding: 8px 12px; border-radius: 6px; }
nav { background: var(--band); border: 1px solid var(--line); border-radius: 6px;
      padding: 8px 14px; display: flex; flex-wrap: wrap; gap: 2px 16px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--band); font-weight: 600; }
tr:nth-child(even) td { background: #fbfcfd; }
tr.baseline td { background: #f3f0ff; font-style: italic; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.wrap { overflow-wrap: anywhere; min-width: 7em; }
td code { overflow-wrap: break-word; }
td code, p code { font-size: 12px; }
td [title] { text-decoration: underline dotted #8c959f; cursor: help; }
details { margin: 4px 0 12px; }
summary { cursor: pointer; color: var(--accent); }
figure { margin: 8px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figure svg { display: block; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
/* Sample pictures at their own size (shrinking them shrinks the words drawn in them), as
   many to a line as fit; each caption wraps to its picture's width. */
.gallery { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.gallery figure { display: table; margin: 0; }
.gallery figcaption { display: table-caption; caption-side: bottom; }
.gallery img { max-width: min(1116px, calc(100vw - 64px)); }
pre { background: var(--band); border: 1px solid var(--line); border-radius: 6px;
      padding: 10px 12px; font-size: 12px; overflow-x: auto; }
.bad { color: #cf222e; font-weight: 600; }
footer { color: var(--muted); font-size: 12px; margin-top: 48px; }
"""


def esc(text: object) -> str:
    """``text`` escaped for HTML."""
    return html.escape("" if text is None else str(text))


_NUMBER = re.compile(r"^\[?[+-]?(\d[\d,]*)?\.?\d+(e[+-]?\d+)?\b")


def _is_number(text: str) -> bool:
    """Whether a cell reads as a number ("0.61 ± 0.02", "45,678", "3", "[0.5, 0.7]"), for
    alignment, and to keep it on one line."""
    return bool(_NUMBER.match(text))


@dataclass(frozen=True)
class Cell:
    """A table cell with more to it than its text: a hover ``title`` (the full text of a
    shortened cell, or the numbers behind it)."""

    text: str
    title: str = ""


def shorten(text: object, limit: int) -> Cell | str:
    """``text`` cut to ``limit`` characters ("…" ending) with the whole of it as the cell's
    title; unchanged when short enough."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else Cell(text[: limit - 1] + "…", text)


_BREAK = re.compile(r"([_/(\[,=])")


def breakable(text: str) -> str:
    """``text`` escaped, with a line-break opportunity (``<wbr>``) after ``_ / ( [ , =``: long
    names (``unet[base_filters=16]``, ``categorical_crossentropy``) wrap at their joints
    when a column has to be narrow, and stay whole when it does not."""
    return _BREAK.sub(r"\1<wbr>", esc(text))


def table(frame: pd.DataFrame, *, code_columns: tuple[str, ...] = (),
          wrap_columns: tuple[str, ...] = (), row_classes: list[str] | None = None,
          interactive: bool = False) -> str:
    """``frame`` (cells already display strings, :class:`Cell`, or plain values) as an HTML
    table that narrows to the page before it scrolls.

    Numeric-looking cells are right-aligned and kept on one line; ``code_columns`` are set
    in monospace (broken only where one would not fit a line); ``wrap_columns`` (names)
    break at their joints (:func:`breakable`); headers break after ``_``. ``row_classes``:
    a CSS class per row ("" for none), e.g. ``baseline``. ``interactive``: the reader can
    sort it (click a heading), filter it and page it (:data:`PAGE_ROWS` rows a page).
    """
    head = "".join(f"<th>{breakable(str(c))}</th>" for c in frame.columns)
    rows = []
    for k, values in enumerate(frame.itertuples(index=False)):
        cells = []
        for col, value in zip(frame.columns, values, strict=True):
            title = value.title if isinstance(value, Cell) else ""
            value = value.text if isinstance(value, Cell) else value
            text = "" if value is None or (isinstance(value, float) and value != value) \
                else str(value)
            if col in code_columns and text:
                body = f"<code>{esc(text)}</code>"
            elif col in wrap_columns:
                body = breakable(text)
            else:
                body = esc(text)
            if title:
                body = f'<span title="{esc(title)}">{body}</span>'
            cls = "num" if _is_number(text) else "wrap" if col in wrap_columns else ""
            cells.append(f'<td class="{cls}">{body}</td>' if cls else f"<td>{body}</td>")
        row_cls = row_classes[k] if row_classes else ""
        tr = f'<tr class="{esc(row_cls)}">' if row_cls else "<tr>"
        rows.append(tr + "".join(cells) + "</tr>")
    mark = f' data-interactive data-page-rows="{PAGE_ROWS}"' if interactive else ""
    return (f'<div class="scroll"><table{mark}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def png_img(data: bytes, alt: str, *, min_font_px: float | None = None) -> str:
    """An ``<img>`` whose source is ``data`` (PNG bytes) inline as base64.

    ``min_font_px``: the smallest text drawn in the picture, in its own pixels; written as
    ``data-min-font-px`` so a check of the page can tell how small it is once shown.
    """
    encoded = base64.b64encode(data).decode("ascii")
    extra = f' data-min-font-px="{min_font_px:.1f}"' if min_font_px else ""
    return f'<img src="data:image/png;base64,{encoded}" alt="{esc(alt)}"{extra}>'


def smallest_font_pt(fig: Figure) -> float | None:
    """The smallest font size (points) of the text ``fig`` draws: titles, labels, tick
    labels, legends and annotations of its visible axes; None when it has none."""
    from matplotlib.text import Text

    sizes = []
    for artist in fig.findobj(Text):
        if not artist.get_text().strip() or not artist.get_visible():
            continue
        axes = artist.axes
        if axes is not None and not axes.get_visible():
            continue
        sizes.append(float(artist.get_fontsize()))
    return min(sizes) if sizes else None


def figure_img(fig: Figure, alt: str, *, dpi: int = DPI) -> str:
    """A matplotlib figure rendered (Agg) to PNG and inlined as an ``<img>``, which records
    its smallest text in pixels (``data-min-font-px``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    points = smallest_font_pt(fig)
    return png_img(buf.getvalue(), alt, min_font_px=points * dpi / 72 if points else None)


_SVG_ID = re.compile(r'\b(id="|url\(#|href="#)')


def figure_svg(fig: Figure, alt: str, *, prefix: str,
               titles: dict[str, str] | None = None) -> str:
    """A matplotlib figure as inline SVG, its text kept as text (so it can be searched,
    selected and measured), shown at its own size and shrunk only to fit the page. The
    figure is drawn whole (``layout="constrained"`` keeps its labels inside).

    Args:
        prefix: prepended to every id in the drawing, so two drawings on a page cannot
            collide.
        titles: ``{gid: text}``: each artist drawn with that ``gid`` gets ``text`` as its SVG
            ``<title>``, the tooltip a reader sees on hovering it.
    """
    import matplotlib as mpl

    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", facecolor="white")  # laid out by the figure itself
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)  # a date: not ours
    for gid, text in (titles or {}).items():
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{esc(text)}</title>', 1)
    svg = _SVG_ID.sub(lambda m: f"{m.group(1)}{prefix}-", svg)
    head_end = svg.index(">")
    head = svg[:head_end]
    width = float(re.search(r'width="([\d.]+)pt"', head).group(1))
    # Points to CSS px (96/72): the size matplotlib meant; never wider than the page.
    head = re.sub(r'\s(width|height)="[\d.]+pt"', "", head)
    head += (f' width="100%" role="img" aria-label="{esc(alt)}" '
             f'style="max-width:{width * 96 / 72:.0f}px"')
    return head + svg[head_end:]


def figure(img: str, caption: str = "") -> str:
    """``img`` in a ``<figure>`` with an optional caption (HTML)."""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure>{img}{cap}</figure>"


def file_img(path: Path, alt: str, *, min_font_px: float | None = None) -> str:
    """The PNG file at ``path`` inlined as an ``<img>`` (``min_font_px``: see :func:`png_img`)."""
    return png_img(path.read_bytes(), alt, min_font_px=min_font_px)


def note(text: str) -> str:
    """A highlighted remark, e.g. to say that something is missing (HTML)."""
    return f'<p class="note">{text}</p>'


def page(title: str, meta_html: str, sections: list[tuple[str, str, str, str]],
         footer: str) -> str:
    """The whole document.

    Args:
        title: the page title and heading.
        meta_html: the line(s) under the heading (HTML).
        sections: ``(anchor, heading, caption, body_html)`` in order.
        footer: a closing line (HTML).
    """
    uses_plotly = any(PLOTLY_CLASS in b for _, _, _, b in sections)
    # plotly.js before the charts' own scripts, which call it as the page is read.
    head_js = f"<script>{plotly_js()}</script>" if uses_plotly else ""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _, _ in sections)
    body = "".join(
        f'<section id="{esc(a)}"><h2>{esc(h)}</h2>'
        + (f'<p class="caption">{c}</p>' if c else "") + f"{b}</section>"
        for a, h, c, b in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{STYLE}{TABLE_CSS}</style>{head_js}</head>"
        f"<body><main><h1>{esc(title)}</h1>{meta_html}<nav>{nav}</nav>{body}"
        f"<footer>{footer}</footer></main><script>{TABLE_JS}</script></body></html>\n"
    )
