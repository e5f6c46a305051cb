"""What reproduces each row: the spec, the seeds and the MLflow runs, and the versions."""

from __future__ import annotations

import json

import pandas as pd

from bench.report.context import ReportContext
from bench.report.html import esc, table
from bench.report.registry import register_section


@register_section("reproduce", title="Reproducing the results")
def render(ctx: ReportContext) -> str:
    """Every row's seeds and MLflow run ids (open them in the MLflow UI), and the
    spec and library versions the sweep ran with."""
    rows = pd.DataFrame({
        "rank": ctx.board["rank"].astype(str),
        "model": ctx.board["model"].astype(str),
        "loss": ctx.board["loss"].astype(str),
        "seeds": ctx.board["seeds"].map(lambda s: ", ".join(map(str, json.loads(s)))),
        "best trial": ctx.board["best_trial_id"].fillna("").astype(str),
        "MLflow runs": ctx.board["mlflow_run_ids"].map(lambda s: " ".join(json.loads(s))),
    })
    if len(ctx.datasets) > 1:
        rows.insert(1, "dataset", ctx.board["dataset"].astype(str))
    spec = ctx.spec
    versions = ", ".join(f"{k} {v}" for k, v in ctx.versions.items()) or "not recorded"
    again = (f"<p>Run again with <code>zoobench sweep spec.yaml --name {esc(ctx.sweep)}</code>"
             " (the spec below saved as <code>spec.yaml</code>): finished trials are kept, "
             "missing ones run.</p>")
    spec_html = f"<pre>{esc(spec)}</pre>" if spec else "<p>The sweep spec was not recorded.</p>"
    return (table(rows, code_columns=("best trial", "MLflow runs"))
            + f"<p>Versions: {esc(versions)}.</p>" + again + spec_html)
