"""The search: which hyperparameters mattered and where the good region is.

Drawn for a sweep whose trials vary a hyperparameter (a learning rate drawn per trial, a
batch size chosen, ...): parameter importance (Optuna's fANOVA over the trials, with
bootstrap intervals), parallel coordinates (parameters -> metric), a slice plot per
parameter and the metric over trial order with the best so far. Left out otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report import search
from bench.report.context import ReportContext
from bench.report.html import esc, table
from bench.report.interactive import plotly_div
from bench.report.registry import register_section
from bench.results import leaderboard as lb

SLICES_PER_ROW = 3


@register_section("search", title="Search: which hyperparameters mattered")
def render(ctx: ReportContext) -> str:
    """How the sweep's hyperparameters relate to its metric, over every finished trial of
    every stage: their importance, the trials as lines through the parameters, and the
    metric against each parameter and over the order the trials ran in."""
    trials, metric = _search_trials(ctx)
    if trials.empty:
        return ""
    params = search.hyperparameters(trials)
    space = search.search_space(params)
    if not [p for p in space if p not in search.GRID]:
        return ""  # no hyperparameter varied: a grid of models x losses, shown elsewhere
    return ctx.per_dataset(lambda part: _render(part, metric))


def _search_trials(ctx: ReportContext) -> tuple[pd.DataFrame, str]:
    """The finished trials of every stage, and the metric they were searched by (the
    sweep's own, a validation one, which every stage records)."""
    t = ctx.trials
    metric = lb.first_value(t, "metric") or ctx.metric
    if metric not in t:
        metric = ctx.metric
    t = t[lb.finished_mask(t)]
    t = t[np.isfinite(pd.to_numeric(t[metric], errors="coerce").astype(float))]
    return t, str(metric)


def _render(ctx: ReportContext, metric: str) -> str:
    trials, _ = _search_trials(ctx)
    params = search.hyperparameters(trials)
    space = search.search_space(params)
    if not space or len(trials) < 3:
        return "<p>Too few finished trials, or nothing varied, on this dataset.</p>"
    values = trials[metric].astype(float)
    study = search.build_study(params, values, space, ctx.mode)
    try:
        imp = search.importances(study)
    except RuntimeError:  # fANOVA: "zero total variance": every trial scored the same
        return f"<p>The {len(study.trials)} trials' {esc(metric)} does not vary: nothing " \
            "for the search's views to explain on this dataset.</p>"
    slug = "".join(ch if ch.isalnum() else "-" for ch in ctx.datasets[0])
    n = len(study.trials)
    sample = (f" (fANOVA saw a random {search.MAX_TRIALS} of them)"
              if n > search.MAX_TRIALS else "")
    shown = pd.DataFrame({
        "parameter": imp["param"],
        "importance": imp["importance"].map(lambda v: f"{v:.3f}"),
        "80% of resamples": [f"{lo:.3f} to {hi:.3f}" for lo, hi in
                             zip(imp["low"], imp["high"], strict=True)],
        "searched over": [_describe(space[p]) for p in imp["param"]],
    })
    return (
        f"<p>{n} finished trials{sample}, by <b>{esc(metric)}</b> "
        f"({'higher' if ctx.mode == 'max' else 'lower'} is better). <i>Importance</i> is the "
        "share of the metric's variance a parameter explains on its own (fANOVA, "
        "<code>optuna.importance.get_param_importances</code> over an Optuna study of the "
        f"trials); its bar spans the middle 80% of {search.N_BOOT} bootstrap resamples of "
        "the trials: a wide bar says the sweep has too few trials to tell.</p>"
        + plotly_div(_importance_chart(imp), f"search-importance-{slug}",
                     height=110 + 34 * len(imp))
        + table(shown)
        + plotly_div(_parallel(params.loc[values.index], values, space, metric, ctx.mode),
                     f"search-parallel-{slug}", height=420)
        + "<p>Each line is a trial through its parameters to its metric; drag along an axis "
          "to keep only the trials in that range.</p>"
        + _slices(ctx, trials, params, values, space, metric, f"search-slices-{slug}")
        + plotly_div(_history(ctx, trials, values, metric), f"search-history-{slug}",
                     height=380))


def _describe(dist: object) -> str:
    choices = getattr(dist, "choices", None)
    if choices is not None:
        return ", ".join(map(str, choices))
    scale = " (log scale)" if getattr(dist, "log", False) else ""
    return f"{dist.low:g} to {dist.high:g}{scale}"


def _importance_chart(imp: pd.DataFrame):
    import plotly.graph_objects as go

    imp = imp.iloc[::-1]  # largest at the top
    fig = go.Figure(go.Bar(
        x=imp["importance"], y=imp["param"], orientation="h", marker={"color": "#0969da"},
        error_x={"type": "data", "symmetric": False,
                 "array": (imp["high"] - imp["importance"]).clip(lower=0),
                 "arrayminus": (imp["importance"] - imp["low"]).clip(lower=0),
                 "color": "#57606a"},
        customdata=np.column_stack([imp["low"], imp["high"]]),
        hovertemplate="%{y}: importance %{x:.3f}<br>80% of resamples: %{customdata[0]:.3f} "
                      "to %{customdata[1]:.3f}<extra></extra>"))
    fig.update_layout(title={"text": "parameter importance (fANOVA)", "x": 0},
                      xaxis={"title": {"text": "share of the metric's variance"},
                             "rangemode": "tozero"},
                      yaxis={"type": "category"}, margin={"t": 40, "b": 50})
    return fig


def _axis_values(column: pd.Series, dist: object) -> tuple[np.ndarray, dict]:
    """A parameter as numbers for an axis and the axis' tick labels (categories by code,
    log-scale parameters as log10 with their values written)."""
    choices = getattr(dist, "choices", None)
    if choices is not None:
        codes = {c: i for i, c in enumerate(choices)}
        return (column.map(lambda v: codes.get(search._py(v), np.nan)).to_numpy(dtype=float),
                {"tickvals": list(range(len(choices))), "ticktext": [str(c) for c in choices]})
    x = column.astype(float).to_numpy()
    if getattr(dist, "log", False):
        lo, hi = np.floor(np.log10(dist.low)), np.ceil(np.log10(dist.high))
        ticks = np.arange(lo, hi + 1)
        return np.log10(x), {"tickvals": list(ticks), "ticktext": [f"{10 ** t:g}" for t in ticks]}
    return x, {}


def _parallel(params: pd.DataFrame, values: pd.Series, space: dict, metric: str, mode: str):
    import plotly.graph_objects as go

    dims = []
    for name, dist in space.items():
        x, ticks = _axis_values(params[name], dist)
        dims.append({"label": name, "values": x, **ticks})
    v = values.to_numpy(dtype=float)
    dims.append({"label": metric, "values": v})
    fig = go.Figure(go.Parcoords(
        dimensions=dims, labelfont={"size": 13}, tickfont={"size": 11},
        line={"color": v, "colorscale": "Viridis", "reversescale": mode == "min",
              "showscale": True, "colorbar": {"title": {"text": metric}}}))
    fig.update_layout(title={"text": f"parallel coordinates: parameters -> {metric}", "x": 0},
                      margin={"l": 160, "r": 40, "t": 80, "b": 30})
    return fig


def _hover_lines(ctx: ReportContext, trials: pd.DataFrame, *, with_id: bool = True
                 ) -> list[str]:
    """Each trial's hover text: its configuration and seed (and trial id)."""
    seeds = trials["seed"].astype(str) if "seed" in trials else pd.Series("", trials.index)
    return [f"{m} / {lo}, seed {s}" + (f"<br>trial {t}" if with_id else "")
            for m, lo, s, t in zip(trials["model"].astype(str), trials["loss"].astype(str),
                                   seeds, trials["trial_id"].astype(str), strict=True)]


def _slices(ctx: ReportContext, trials: pd.DataFrame, params: pd.DataFrame,
            values: pd.Series, space: dict, metric: str, div_id: str) -> str:
    """One scatter per parameter: the metric against its value, coloured by trial order."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(space)
    cols = min(SLICES_PER_ROW, len(names))
    rows = -(-len(names) // cols)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.04,
                        vertical_spacing=0.16)
    order = np.arange(len(trials))
    hover = _hover_lines(ctx, trials, with_id=False)  # one copy per parameter: kept short
    for k, name in enumerate(names):
        dist = space[name]
        r, c = k // cols + 1, k % cols + 1
        categorical = getattr(dist, "choices", None) is not None
        x = params[name].astype(str) if categorical else params[name].astype(float)
        fig.add_trace(go.Scatter(
            x=x, y=values, mode="markers", showlegend=False,
            marker={"size": 7, "color": order, "colorscale": "Blues", "opacity": 0.8,
                    "line": {"width": 0.5, "color": "#57606a"},
                    "showscale": k == 0, "colorbar": {"title": {"text": "trial #"}}},
            text=hover,
            hovertemplate="%{text}<br>" + esc(name) + " %{x}<br>" + esc(metric)
                          + " %{y:.4f}<extra></extra>"), row=r, col=c)
        fig.update_xaxes(title_text=name, row=r, col=c,
                         type="category" if categorical else
                         "log" if getattr(dist, "log", False) else "linear")
    fig.update_yaxes(title_text=metric, col=1)
    fig.update_layout(title={"text": f"slices: {metric} against each parameter", "x": 0})
    return plotly_div(fig, div_id, height=80 + 300 * rows)


def _history(ctx: ReportContext, trials: pd.DataFrame, values: pd.Series, metric: str):
    """The metric of each trial in the order they started, and the best so far."""
    import plotly.graph_objects as go

    when = pd.to_datetime(trials["started_at"], utc=True, errors="coerce") \
        if "started_at" in trials else pd.Series(pd.NaT, index=trials.index)
    order = np.lexsort((trials["trial_id"].astype(str).to_numpy(),
                        when.fillna(pd.Timestamp.max.tz_localize("UTC")).to_numpy()))
    v = values.to_numpy(dtype=float)[order]
    hover = np.asarray(_hover_lines(ctx, trials), dtype=object)[order]
    k = np.arange(1, len(v) + 1)
    best = search.best_so_far(v, ctx.mode)
    fig = go.Figure([
        # The line first: a point hovered on it still shows the point's own label.
        go.Scatter(x=k, y=best, mode="lines", name="best so far", hoverinfo="skip",
                   line={"color": "#cf222e", "shape": "hv", "width": 2}),
        go.Scatter(x=k, y=v, mode="markers", name="trial", text=hover, customdata=best,
                   marker={"size": 6, "color": "#57606a"},
                   hovertemplate="%{text}<br>#%{x}: " + esc(metric) + " %{y:.4f}"
                   "<br>best so far %{customdata:.4f}<extra></extra>")])
    fig.update_layout(title={"text": f"{metric} over trial order (best so far)", "x": 0},
                      xaxis={"title": {"text": "trial, in the order they started"}},
                      yaxis={"title": {"text": metric}},
                      legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right",
                              "yanchor": "bottom"})
    return fig
