"""The report's interactive pieces, still one self-contained file: plotly charts (plotly.js
inlined once, in the page's head) and a leaderboard table that sorts, filters and pages.

A chart is a plotly figure turned into a ``<div>`` and the call that draws it
(:func:`plotly_div`); :func:`bench.report.html.page` puts plotly.js in the page when any
section has one. Nothing refers to the network: the report opens offline.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: The class of a plotly chart's ``<div>``: a page holding one needs plotly.js.
PLOTLY_CLASS = "plotly-graph-div"
#: Text sizes in the charts, in CSS px: none under the report's minimum (9 px).
FONT_PX, SMALL_FONT_PX = 13, 11
#: The chart options: no plotly logo, no link out (the file is offline), pictures as PNG.
CONFIG = {"displaylogo": False, "responsive": True,
          "toImageButtonOptions": {"format": "png", "scale": 2}}
#: Rows of an interactive table shown at a time; more are paged.
PAGE_ROWS = 200


@cache
def plotly_js() -> str:
    """plotly.js (minified) as shipped with the plotly package, to inline in the page."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _template() -> go.layout.Template:
    """A small layout template: the default one is ~10 kB repeated in every chart."""
    import plotly.graph_objects as go

    axis = {"gridcolor": "#e6e9ed", "zerolinecolor": "#d1d9e0", "linecolor": "#8c959f",
            "showline": True, "ticks": "outside", "automargin": True}
    return go.layout.Template(layout={
        "font": {"family": "-apple-system, 'Segoe UI', 'Helvetica Neue', Arial, sans-serif",
                 "size": FONT_PX, "color": "#1f2328"},
        "paper_bgcolor": "white", "plot_bgcolor": "white",
        "colorway": ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                     "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"],
        "xaxis": axis, "yaxis": axis, "hovermode": "closest",
        "legend": {"font": {"size": SMALL_FONT_PX}},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50}})


def plotly_div(fig: go.Figure, div_id: str, *, height: int) -> str:
    """``fig`` as an HTML ``<div id=div_id>`` drawn by plotly.js in the page, ``height`` CSS
    px tall and as wide as the page (it follows the window). The figure keeps its data
    (plotly encodes arrays as base64), so hovering, zooming and legend clicks work."""
    import plotly.io as pio

    template = _template()
    if fig.layout.template.data:  # a figure's own trace defaults (shared hover text) stay
        template.data = fig.layout.template.data
    fig.update_layout(template=template, height=height, autosize=True)
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=CONFIG, default_width="100%", default_height=f"{height}px")


#: Sort (click a heading), filter (words, or ``column:text``) and page the tables marked
#: ``data-interactive``; numbers sort as numbers (a cell's leading number), blanks last.
TABLE_JS = """
(() => {
  const num = t => { const m = /^\\[?\\s*#?([+-]?(\\d[\\d,]*)?\\.?\\d+(e[+-]?\\d+)?)/i.exec(t);
                     return m ? parseFloat(m[1].replace(/,/g, '')) : NaN; };
  document.querySelectorAll('table[data-interactive]').forEach(table => {
    const body = table.tBodies[0];
    const rows = [...body.rows];
    const heads = [...table.tHead.rows[0].cells].map(th => th.textContent.trim());
    const size = parseInt(table.dataset.pageRows || '200', 10);
    let shown = rows, page = 0, sortCol = -1, asc = true;
    const bar = document.createElement('div');
    bar.className = 'tablebar';
    bar.innerHTML = '<label>Filter <input type="search" class="tablefilter" ' +
      'placeholder="words, or column:text (e.g. loss:dice model:unet)" size="44"></label> ' +
      '<span class="tablecount"></span> <span class="pager"><button type="button" ' +
      'class="prev">&lsaquo; previous</button> <button type="button" class="next">' +
      'next &rsaquo;</button></span>';
    table.closest('.scroll').before(bar);
    const input = bar.querySelector('input'), count = bar.querySelector('.tablecount');
    const pager = bar.querySelector('.pager');
    const draw = () => {
      const pages = Math.max(1, Math.ceil(shown.length / size));
      page = Math.min(page, pages - 1);
      const from = page * size, to = Math.min(shown.length, from + size);
      body.replaceChildren(...shown.slice(from, to));
      count.textContent = shown.length === rows.length
        ? `${rows.length} rows` + (pages > 1 ? `, ${from + 1}-${to} shown` : '')
        : `${shown.length} of ${rows.length} rows match` +
          (pages > 1 ? `, ${from + 1}-${to} shown` : '');
      pager.hidden = pages <= 1;
      bar.querySelector('.prev').disabled = page === 0;
      bar.querySelector('.next').disabled = page >= pages - 1;
    };
    const filter = () => {
      const terms = input.value.toLowerCase().split(/\\s+/).filter(Boolean).map(t => {
        const at = t.indexOf(':');
        const col = at > 0 ? heads.findIndex(h => h.toLowerCase() === t.slice(0, at)) : -1;
        return col >= 0 ? [col, t.slice(at + 1)] : [-1, t];
      });
      shown = rows.filter(r => terms.every(([col, text]) => col >= 0
        ? r.cells[col].textContent.toLowerCase().includes(text)
        : r.textContent.toLowerCase().includes(text)));
      sort(false);
    };
    const sort = flip => {
      if (sortCol >= 0) {
        const key = r => r.cells[sortCol].textContent.trim();
        const numeric = shown.every(r => !key(r) || !isNaN(num(key(r))));
        shown = [...shown].sort((a, b) => {
          const x = key(a), y = key(b);
          if (!x || !y) return (!x) - (!y);
          const d = numeric ? num(x) - num(y) : x.localeCompare(y, undefined, {numeric: true});
          return asc ? d : -d;
        });
      }
      page = 0;
      draw();
    };
    [...table.tHead.rows[0].cells].forEach((th, i) => {
      th.classList.add('sortable');
      th.title = 'sort by this column (again: the other way)';
      th.addEventListener('click', () => {
        asc = sortCol === i ? !asc : true;
        sortCol = i;
        table.querySelectorAll('th').forEach(h => h.removeAttribute('aria-sort'));
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        sort(true);
      });
    });
    input.addEventListener('input', filter);
    bar.querySelector('.prev').addEventListener('click', () => { page--; draw(); });
    bar.querySelector('.next').addEventListener('click', () => { page++; draw(); });
    draw();
  });
})();
"""

#: The styles of the table's controls.
TABLE_CSS = """
.tablebar { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center;
            font-size: 13px; margin: 8px 0 0; color: var(--muted); }
.tablebar input { font: inherit; padding: 2px 6px; max-width: 100%; }
.tablebar button { font: inherit; }
th.sortable { cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; margin: 6px 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #8c959f;
          vertical-align: -1px; margin-right: 4px; }
"""
