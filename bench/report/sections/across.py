"""Across datasets: the critical-difference diagram of the configurations' mean ranks."""

from __future__ import annotations

from bench.report.context import ReportContext
from bench.report.html import esc, figure, table
from bench.report.registry import register_section
from bench.results import across
from bench.results.leaderboard import configurations_as_models

# Layout of the diagram, in SVG user units (px at 100%): the rank axis, the room each side
# for the labels (at least), a label's line, the axis' height, a character's mean width.
_AXIS, _MARGIN, _ROW, _TOP, _CHAR = 420, 290, 22, 46, 7.4
_MIN_BAR = 24  # shortest bar joining configurations not told apart


def cd_diagram_svg(result: across.AcrossResult) -> str:
    """An inline SVG CD diagram (Demšar 2006, fig. 1): configurations on a rank axis (best
    left), a bar of the critical difference, and thick bars joining configurations whose
    mean ranks differ by less than it (not significantly different)."""
    complete = result.table[result.table["complete"]].reset_index(drop=True)
    k = len(complete)
    axis = _AXIS
    # Room for the longest label, "config (mean rank)", so none is cut at the edge; a wide
    # drawing is shrunk to the page, its 13 px text no smaller than 10 px at 1,400 px.
    longest = max((len(f"{c} (0.00)") for c in complete["config"]), default=0)
    margin = max(_MARGIN, int(longest * _CHAR) + 24)
    width = axis + 2 * margin

    def x(rank: float) -> float:
        return margin + (rank - 1) / max(k - 1, 1) * axis

    half = (k + 1) // 2
    height = _TOP + 30 + max(half, k - half) * _ROW + len(result.cliques) * 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="critical difference diagram" '
             f'style="max-width:{width}px;font:13px sans-serif">',
             f'<line x1="{margin}" y1="{_TOP}" x2="{margin + axis}" y2="{_TOP}" '
             f'stroke="black"/>']
    every = 1 if k <= 15 else 5  # numbers 12 px apart would overprint: 1, 5, 10, ...
    for r in range(1, k + 1):
        parts.append(f'<line x1="{x(r):.1f}" y1="{_TOP - 5}" x2="{x(r):.1f}" y2="{_TOP}" '
                     f'stroke="black"/>')
        if r == 1 or r % every == 0:
            parts.append(f'<text x="{x(r):.1f}" y="{_TOP - 9}" text-anchor="middle">{r}</text>')
    if k >= 2 and result.cd == result.cd:  # not NaN
        span = result.cd / max(k - 1, 1) * axis
        parts.append(f'<line x1="{margin}" y1="12" x2="{margin + span:.1f}" y2="12" '
                     f'stroke="black" stroke-width="2"/><text x="{margin + span + 6:.1f}" '
                     f'y="16">CD = {result.cd:.2f}</text>')
    for i, row in complete.iterrows():
        left = i < half
        y = _TOP + 24 + (i if left else k - 1 - i) * _ROW + len(result.cliques) * 8
        xr = x(float(row["mean_rank"]))
        end = margin - 10 if left else margin + axis + 10
        label = f'{esc(row["config"])} ({row["mean_rank"]:.2f})'
        parts.append(f'<polyline points="{xr:.1f},{_TOP} {xr:.1f},{y} {end},{y}" '
                     f'fill="none" stroke="#555"/><text x="{end + (-4 if left else 4)}" '
                     f'y="{y + 4}" text-anchor="{"end" if left else "start"}">{label}'
                     f'<title>{label}</title></text>')
    ranks = dict(zip(complete["config"], complete["mean_rank"], strict=True))
    for j, group in enumerate(result.cliques):
        y = _TOP + 10 + j * 8
        lo, hi = x(min(ranks[c] for c in group)), x(max(ranks[c] for c in group))
        # Configurations at (nearly) the same mean rank still get a bar one can see.
        pad = max(3.0, (_MIN_BAR - (hi - lo)) / 2)
        parts.append(f'<line x1="{lo - pad:.1f}" y1="{y}" x2="{hi + pad:.1f}" y2="{y}" '
                     f'stroke="#c0392b" stroke-width="4"><title>not significantly different: '
                     f'{esc(", ".join(group))}</title></line>')
    parts.append("</svg>")
    return "".join(parts)


@register_section("across", title="Across datasets")
def render(ctx: ReportContext) -> str:
    """Configurations ranked on each dataset, their mean ranks, and which differ significantly
    (Friedman's test, then Nemenyi's critical difference at alpha = 0.05; Demšar 2006)."""
    if len(ctx.datasets) < 2:
        return ""  # one dataset: nothing to compare across, the section is left out
    # Several configurations of a model x loss: each is one (bench.results.leaderboard).
    result = across.across(configurations_as_models(ctx.board))
    words = " ".join(esc(line) for line in across.summary_lines(result))
    caption = (f"{words} Each configuration hangs from its mean rank (1 = best, left); a red "
               "bar joins configurations whose mean ranks differ by less than the critical "
               "difference: the data cannot tell them apart.")
    # config is "model / loss": its own columns would only repeat it.
    shown = result.table.drop(columns=["model", "loss"], errors="ignore").round(3)
    return figure(cd_diagram_svg(result), caption) + table(shown, wrap_columns=("config",))
