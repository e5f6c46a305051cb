"""Self-contained HTML pieces: escaped tables, inline PNG figures and the page around them.

Nothing here refers to the network: pictures are ``data:image/png;base64`` URIs and the
stylesheet is inline, so the report opens from disk, offline, as one file.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
      padding: 8px 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; white-space: nowrap; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--band); font-weight: 600; white-space: nowrap; }
tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td code, p code { font-size: 12px; }
figure { margin: 8px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr));
           gap: 16px; }
/* Sample pictures fill their cell, whatever size the sweep saved them at. */
.gallery img { width: 100%; }
pre { background: var(--band); border: 1px solid var(--line); border-radius: 6px;
      padding: 10px 12px; font-size: 12px; overflow-x: auto; }
.bad { color: #cf222e; font-weight: 600; }
footer { color: var(--muted); font-size: 12px; margin-top: 48px; }
"""


def esc(text: object) -> str:
    """``text`` escaped for HTML."""
    return html.escape("" if text is None else str(text))


_NUMBER = re.compile(r"^[+-]?(\d[\d,]*)?\.?\d+(e[+-]?\d+)?\b")


def _is_number(text: str) -> bool:
    """Whether a cell reads as a number ("0.61 ± 0.02", "45,678", "3"), for alignment."""
    return bool(_NUMBER.match(text))


def table(frame: pd.DataFrame, *, code_columns: tuple[str, ...] = ()) -> str:
    """``frame`` (cells already display strings, or plain values) as an HTML table.

    Numeric-looking cells are right-aligned; ``code_columns`` are set in monospace.
    """
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, values, strict=True):
            text = "" if value is None or (isinstance(value, float) and value != value) \
                else str(value)
            body = f"<code>{esc(text)}</code>" if col in code_columns and text else esc(text)
            cls = ' class="num"' if _is_number(text) else ""
            cells.append(f"<td{cls}>{body}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def png_img(data: bytes, alt: str) -> str:
    """An ``<img>`` whose source is ``data`` (PNG bytes) inline as base64."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{esc(alt)}">'


def figure_img(fig: Figure, alt: str, *, dpi: int = 110) -> str:
    """A matplotlib figure rendered (Agg) to PNG and inlined as an ``<img>``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return png_img(buf.getvalue(), alt)


def figure(img: str, caption: str = "") -> str:
    """``img`` in a ``<figure>`` with an optional caption (HTML)."""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure>{img}{cap}</figure>"


def file_img(path: Path, alt: str) -> str:
    """The PNG file at ``path`` inlined as an ``<img>``."""
    return png_img(path.read_bytes(), alt)


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
    nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _, _ in sections)
    body = "".join(
        f'<section id="{esc(a)}"><h2>{esc(h)}</h2>'
        + (f'<p class="caption">{c}</p>' if c else "") + f"{b}</section>"
        for a, h, c, b in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{esc(title)}</h1>{meta_html}<nav>{nav}</nav>{body}"
        f"<footer>{footer}</footer></main></body></html>\n"
    )
