"""The predictions picture (``bench.results.predictions.save_predictions_png``): each
panel drawn where it belongs, in the colours the report's legend names."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image

from bench.report.sections.predictions import mask_colours
from bench.results.predictions import GAP_PX, PANEL_PX, TITLE_PX, save_predictions_png


def _cell(picture: np.ndarray, row: int, col: int) -> np.ndarray:
    """The (PANEL_PX, PANEL_PX, 3) cell of panel ``col`` in ``row``."""
    top = TITLE_PX + row * (PANEL_PX + GAP_PX)
    left = GAP_PX + col * (PANEL_PX + GAP_PX)
    return picture[top:top + PANEL_PX, left:left + PANEL_PX]


def _hex(pixel: np.ndarray) -> str:
    return "#" + bytes(pixel.astype(np.uint8)).hex()


def test_each_row_shows_its_input_truth_and_prediction_in_the_legend_s_colours(tmp_path):
    n_classes, rows = 4, 3
    truth = np.zeros((rows, 16, 16, n_classes))
    pred = np.zeros_like(truth)
    for i in range(rows):
        truth[i, ..., i] = 1  # row i: all class i
        pred[i, ..., (i + 1) % n_classes] = 1  # predicted: the next class
    x = np.tile(np.linspace(0, 1, 16)[None, None, :, None], (rows, 16, 1, 1))  # a ramp
    path = save_predictions_png(x, truth, pred, "segmentation", tmp_path / "p.png")
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert picture.shape == (TITLE_PX + rows * (PANEL_PX + GAP_PX),
                             3 * PANEL_PX + 4 * GAP_PX, 3)
    colours = mask_colours(n_classes)
    for i in range(rows):
        truth_cell, pred_cell = _cell(picture, i, 1), _cell(picture, i, 2)
        # 16 px scaled by 9 fill the 144 px cell exactly: every pixel is the class colour
        assert {_hex(p) for p in truth_cell.reshape(-1, 3)} == {colours[i]}
        assert {_hex(p) for p in pred_cell.reshape(-1, 3)} == {colours[(i + 1) % n_classes]}
        ramp = _cell(picture, i, 0)[PANEL_PX // 2]  # grey from black (left) to white
        assert _hex(ramp[0]) == "#000000" and _hex(ramp[-1]) == "#ffffff"
        assert (np.diff(ramp[:, 0].astype(int)) >= 0).all()
    # The titles are drawn above the panels, in dark ink on the white strip.
    assert picture[:TITLE_PX].min() < 128


def test_next_frames_show_the_absolute_error_as_a_fourth_panel(tmp_path):
    truth = np.full((1, 3, 8, 8, 1), 0.75)  # sequences: the last frame is drawn
    pred = np.full((1, 3, 8, 8, 1), 0.25)
    x = np.random.default_rng(0).random((1, 3, 8, 8, 2))
    path = save_predictions_png(x, truth, pred, "next_frame", tmp_path / "n.png")
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert picture.shape[1] == 4 * PANEL_PX + 5 * GAP_PX
    error = _cell(picture, 0, 3)
    expected = colormaps["magma"](0.5, bytes=True)[:3]
    assert {_hex(p) for p in error.reshape(-1, 3)} == {_hex(np.asarray(expected))}
    grey = {_hex(p) for p in _cell(picture, 0, 1).reshape(-1, 3)}
    assert grey == {_hex(np.asarray(colormaps["gray"](0.75, bytes=True)[:3]))}


def test_a_large_or_narrow_image_fits_its_cell_centred(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((2, 600, 90, 3))  # taller than a cell, RGB
    truth = np.eye(2)[rng.integers(0, 2, (2, 600, 90))]
    path = save_predictions_png(x, truth, truth, "segmentation", tmp_path / "t.png")
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert picture.shape[:2] == (TITLE_PX + 2 * (PANEL_PX + GAP_PX), 3 * PANEL_PX + 4 * GAP_PX)
    cell = _cell(picture, 1, 0)
    drawn = np.argwhere((cell != 255).any(-1))
    (top, left), (bottom, right) = drawn.min(0), drawn.max(0)
    # every 5th of 600 rows (120 px) and of 90 columns (18 px), centred in the cell
    assert (bottom - top + 1, right - left + 1) == (120, 18)
    assert abs((top + bottom) / 2 - PANEL_PX / 2) <= 1
    assert abs((left + right) / 2 - PANEL_PX / 2) <= 1


def test_each_title_is_inked_over_its_own_column_and_drawn_once(tmp_path):
    from bench.results.predictions import _title_strip

    rows = np.zeros((2, 8, 8, 3))
    first = save_predictions_png(rows[..., :1], rows, rows, "segmentation", tmp_path / "a.png")
    second = save_predictions_png(rows[:1, ..., :1], rows[:1], rows[:1], "segmentation",
                                  tmp_path / "b.png")
    strips = [np.asarray(Image.open(p).convert("RGB"))[:TITLE_PX] for p in (first, second)]
    assert (strips[0] == strips[1]).all()  # the same strip whatever the rows
    assert _title_strip.cache_info().currsize >= 1
    ink = strips[0].min(axis=2) < 128  # (TITLE_PX, width): dark pixels
    for col in range(3):
        left = GAP_PX + col * (PANEL_PX + GAP_PX)
        inside = ink[:, left:left + PANEL_PX]
        assert inside.any(), f"title {col} is missing"
        columns = np.flatnonzero(inside.any(axis=0))
        centre = (columns.min() + columns.max()) / 2
        assert abs(centre - PANEL_PX / 2) <= 2, f"title {col} is not centred: {centre}"
    gaps = [ink[:, GAP_PX + col * (PANEL_PX + GAP_PX) - GAP_PX:GAP_PX + col * (PANEL_PX + GAP_PX)]
            for col in range(4)]
    assert not any(gap.any() for gap in gaps)  # no title spills into the gaps
