"""The report's view of the search (issue 28) and its clutter fixes (issue 30, item 7):
importances equal Optuna's on the same trials, the search section shows them, class names
come from cases.parquet, and the mask legend has the colours the pictures are drawn in."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import FanovaImportanceEvaluator, get_param_importances

from bench.report import build_report, search
from bench.results import records
from tests.test_leaderboard import N_CLASSES, make_results

CLASS_NAMES = ("background", "circle", "square")
BATCHES = (8, 16, 32, 64)


def searched_trials(n_extra: int = 0, seed: int = 0) -> pd.DataFrame:
    """The synthetic sweep's trials with a learning rate drawn per trial (log-uniform
    1e-4..1e-2) and a batch size chosen, the metric best near lr = 1e-3 and falling a
    little with the batch: lr matters most, then the batch, then (barely) the rest."""
    rng = np.random.default_rng(seed)
    trials, _ = make_results("srch")
    lr = 10 ** rng.uniform(-4, -2, len(trials))
    batch = rng.choice(BATCHES, len(trials))
    value = 0.8 - 0.25 * np.abs(np.log10(lr) + 3) - 0.002 * batch + rng.normal(0, .01,
                                                                                len(trials))
    ok = trials["status"] == "TERMINATED"
    return trials.assign(lr=lr, batch_size=batch, val_mean_iou=np.where(ok, value, np.nan))


def optuna_importances(trials: pd.DataFrame, **evaluator) -> dict[str, float]:
    """Optuna's fANOVA importances of the trials, the study built here by hand."""
    done = trials[np.isfinite(trials["val_mean_iou"])]
    space = {"lr": FloatDistribution(float(done["lr"].min()), float(done["lr"].max()),
                                     log=True),
             "batch_size": IntDistribution(int(done["batch_size"].min()),
                                           int(done["batch_size"].max()), log=True),
             "model": CategoricalDistribution(sorted(done["model"].unique())),
             "loss": CategoricalDistribution(sorted(done["loss"].unique()))}
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(
        params={"lr": float(r.lr), "batch_size": int(r.batch_size), "model": r.model,
                "loss": r.loss}, distributions=space, value=float(r.val_mean_iou))
        for r in done.itertuples()])
    return dict(get_param_importances(study, evaluator=FanovaImportanceEvaluator(**evaluator)))


def test_search_space_holds_what_varied():
    trials = searched_trials()
    params = search.hyperparameters(trials)
    space = search.search_space(params)
    assert set(space) == {"lr", "batch_size", "model", "loss"}  # seed, epochs are not params
    assert isinstance(space["lr"], FloatDistribution) and space["lr"].log
    assert space["batch_size"] == IntDistribution(int(trials["batch_size"].min()),
                                                  int(trials["batch_size"].max()), log=True)
    assert space["loss"].choices == ("categorical_crossentropy", "dice")
    # A grid key with more levels than MAX_LEVELS is no parameter (500 model copies).
    many = trials.assign(model=[f"m{i}" for i in range(len(trials))])
    assert "model" not in search.search_space(search.hyperparameters(many)) \
        or len(trials) <= search.MAX_LEVELS


def test_importances_equal_optunas_on_the_same_trials():
    trials = searched_trials()
    params = search.hyperparameters(trials)
    space = search.search_space(params)
    study = search.build_study(params, trials["val_mean_iou"], space, "max")
    assert len(study.trials) == int(np.isfinite(trials["val_mean_iou"]).sum())
    ours = search.importances(study, n_boot=3)
    theirs = optuna_importances(trials, n_trees=search.N_TREES, max_depth=search.MAX_DEPTH,
                                seed=0)
    assert list(ours["param"]) == list(theirs)  # same ranking
    # The forests see the parameters in another order (their random splits differ a little).
    assert ours["importance"].to_numpy() == pytest.approx(list(theirs.values()), abs=2e-3)
    assert list(ours["param"][:2]) == ["lr", "batch_size"]  # what the data was made from
    # Optuna's default forest (64 trees, depth 64) ranks them the same.
    assert list(optuna_importances(trials, seed=0)) == list(ours["param"])
    assert (ours["low"] <= ours["high"]).all() and ours["importance"].sum() == pytest.approx(1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=1,
                max_size=50), st.sampled_from(["max", "min"]))
def test_best_so_far_is_the_running_best(values, mode):
    got = search.best_so_far(np.array(values), mode)
    pick = max if mode == "max" else min
    for k in range(len(values)):
        seen = [v for v in values[: k + 1] if v == v]
        assert (np.isnan(got[k]) and not seen) or got[k] == pick(seen)
    finite = got[np.isfinite(got)]
    assert (np.diff(finite) >= 0).all() if mode == "max" else (np.diff(finite) <= 0).all()


def write_searched_results(root: Path, with_cases: bool = True) -> Path:
    """The searched sweep written as the engine writes it, with pictures drawn by the
    engine's own ``save_predictions_png`` and a cases.parquet naming the classes."""
    from bench.results.predictions import save_predictions_png

    written, _ = make_results("srch", root=root)  # history and pictures
    trials = searched_trials().assign(predictions_png=written["predictions_png"])
    records.write_table(root, "trials", "srch", trials)
    if with_cases:
        cases = pd.DataFrame([{"trial_id": t, "model": m, "loss": lo, "dataset": "shapes",
                               "seed": s, "case": 0, "class_index": k,
                               "class_name": CLASS_NAMES[k], "dice": 0.5, "iou": 0.4,
                               "nsd": 0.5, "hd95": 1.0}
                              for t, m, lo, s in trials[["trial_id", "model", "loss", "seed"]]
                              .itertuples(index=False) for k in range(N_CLASSES)])
        records.write_table(root, "cases", "srch", cases)
    # One real picture: a mask of each class, so the legend's colours can be checked.
    mask = np.zeros((1, 6, 6, N_CLASSES))
    for k in range(N_CLASSES):
        mask[0, :, 2 * k:2 * k + 2, k] = 1
    save_predictions_png(np.zeros((1, 6, 6, 1)), mask, mask, "segmentation",
                         root / "mask.png")
    return root


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, str]:
    root = write_searched_results(tmp_path_factory.mktemp("searched") / "results")
    path = build_report(root, sweep="srch", progress=None)
    return root, path.read_text(encoding="utf-8")


def section(report: str, name: str) -> str:
    return report.split(f'<section id="{name}">')[1].split("</section>")[0]


def test_search_section_shows_optunas_importances(searched):
    _, report = searched
    part = section(report, "search")
    for view in ("importance", "parallel", "slices", "history"):
        assert f'id="search-{view}-shapes"' in part
    assert '"type":"parcoords"' in part.replace(" ", "")
    rows = re.findall(r"<tr><td>(\w+)</td><td class=\"num\">([\d.]+)</td>", part)
    theirs = optuna_importances(searched_trials(), n_trees=search.N_TREES,
                                max_depth=search.MAX_DEPTH, seed=0)
    assert [p for p, _ in rows] == list(theirs)
    assert [float(v) for _, v in rows] == pytest.approx(list(theirs.values()), abs=2e-3)


def test_class_names_come_from_cases_parquet(searched):
    _, report = searched
    part = section(report, "per_class")
    header = re.findall(r"<th>(.*?)</th>", part)
    assert [html.unescape(re.sub("<[^>]+>", "", h)) for h in header][1:] == list(CLASS_NAMES)
    assert "class 0" not in part and "class 1" not in part


def test_mask_legend_has_the_pictures_colours(searched):
    from PIL import Image

    from bench.report.sections.predictions import mask_colours

    root, report = searched
    part = section(report, "predictions")
    legend = re.search(r'<div class="legend".*?</div>', part, re.S).group(0)
    shown = re.findall(r'background:(#[0-9a-f]{6})"></span>([^<]+)</span>', legend)
    assert [name for _, name in shown] == list(CLASS_NAMES)
    assert [c for c, _ in shown] == mask_colours(N_CLASSES)
    # The colours save_predictions_png drew: the middle row of the ground-truth panel
    # crosses each class' stripe.
    picture = np.asarray(Image.open(root / "mask.png").convert("RGB"))
    h, w, _ = picture.shape
    drawn = {"#" + bytes(px).hex() for px in picture[h // 2, w // 3: 2 * w // 3]}
    assert set(mask_colours(N_CLASSES)) <= drawn


def test_without_cases_the_classes_are_numbered(tmp_path):
    root = write_searched_results(tmp_path / "results", with_cases=False)
    report = build_report(root, sweep="srch", progress=None).read_text(encoding="utf-8")
    assert "class 1" in section(report, "per_class")
    assert "class 2</span>" in section(report, "predictions")
