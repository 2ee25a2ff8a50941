"""The refining second pass: crop geometry, loading a model pair, and measuring with it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hc_studio.core.biometry import biometry_from_ellipse
from hc_studio.core.ellipse import (
    Ellipse,
    fit_ellipse_to_points,
    rasterize_ellipse,
    subpixel_contour,
)
from hc_studio.core.export import read_records_csv, write_records_csv
from hc_studio.core.head_crop import CropWindow, jittered_window
from hc_studio.core.inference import SegmentationEngine
from hc_studio.core.io import Frame
from hc_studio.core.measure import REVIEW_PASS_DISAGREEMENT, measure_frame
from hc_studio.core.phantom import make_phantom
from hc_studio.core.refine import refine


def _pair(tmp_path: Path, factory, metadata: dict[str, str], **first_keys: str) -> Path:
    """A first model naming `refine.onnx` (a 128x128 copy of the threshold model) beside it."""
    refiner_meta = {**metadata, "hc_studio.input_height": "128", "hc_studio.input_width": "128"}
    factory(tmp_path / "refine.onnx", refiner_meta)
    first_meta = {**metadata, "hc_studio.refiner": "refine.onnx", **first_keys}
    return factory(tmp_path / "first.onnx", first_meta)


def test_window_maps_a_crop_contour_back_onto_the_frame_ellipse() -> None:
    ellipse = Ellipse(230.4, 141.7, 120.3, 90.8, 0.4)
    frame = rasterize_ellipse(ellipse, (270, 400)).astype(np.float32)
    window = CropWindow.around(ellipse, 1.25)
    crop = window.cut(frame, 160)
    back = fit_ellipse_to_points(window.to_frame_xy(subpixel_contour(crop), 160))
    assert back.cx == pytest.approx(ellipse.cx, abs=0.3)
    assert back.cy == pytest.approx(ellipse.cy, abs=0.3)
    assert back.a == pytest.approx(ellipse.a, abs=0.5) and back.b == pytest.approx(
        ellipse.b, abs=0.5
    )
    on_crop = window.ellipse_on_crop(ellipse, 160)
    assert on_crop.a == pytest.approx(ellipse.a * 160 / window.side)
    assert window.to_frame_xy(np.array([[on_crop.cx, on_crop.cy]]), 160)[0] == pytest.approx(
        [ellipse.cx, ellipse.cy]
    )


def test_window_outside_the_frame_is_zero_and_counted() -> None:
    window = CropWindow(x0=-50, y0=-50, side=100)
    crop = window.cut(np.ones((80, 80), dtype=np.float32), 100)
    assert crop[:50, :50].max() == 0.0 and crop[60:, 60:].min() == 1.0
    assert window.inside_share((80, 80)) == pytest.approx(0.25)


def test_jittered_windows_vary_around_the_head() -> None:
    ellipse = Ellipse(200, 135, 100, 80, 0.0)
    windows = [jittered_window(ellipse, np.random.default_rng(seed)) for seed in range(20)]
    assert len({(w.x0, w.y0, w.side) for w in windows}) > 10
    assert all(2 * 1.15 * 100 - 1 <= w.side <= 2 * 1.4 * 100 + 1 for w in windows)


def test_a_model_names_its_refiner_and_the_pair_loads(
    tmp_path, onnx_model_factory, tiny_model_metadata
) -> None:
    engine = SegmentationEngine(_pair(tmp_path, onnx_model_factory, tiny_model_metadata), "cpu")
    assert engine.refiner is not None and engine.refiner.info.input_height == 128
    assert engine.info.refine_margin == 1.25
    assert engine.describe() == "tiny-threshold (second pass tiny-threshold)"


@pytest.mark.parametrize("name", ["../refine.onnx", "/tmp/refine.onnx", "sub/refine.onnx"])
def test_a_refiner_outside_the_models_folder_is_refused(
    tmp_path, onnx_model_factory, tiny_model_metadata, name
) -> None:
    path = onnx_model_factory(
        tmp_path / "first.onnx", {**tiny_model_metadata, "hc_studio.refiner": name}
    )
    with pytest.raises(ValueError, match="file name beside the model"):
        SegmentationEngine(path, "cpu")


def test_a_missing_refiner_is_named(tmp_path, onnx_model_factory, tiny_model_metadata) -> None:
    path = _pair(tmp_path, onnx_model_factory, tiny_model_metadata)
    (tmp_path / "refine.onnx").unlink()
    with pytest.raises(ValueError, match="refine.onnx is missing"):
        SegmentationEngine(path, "cpu")


def test_a_non_square_or_nested_refiner_is_refused(
    tmp_path, onnx_model_factory, tiny_model_metadata
) -> None:
    path = _pair(tmp_path, onnx_model_factory, tiny_model_metadata)
    onnx_model_factory(tmp_path / "refine.onnx", tiny_model_metadata)  # 128x192
    with pytest.raises(ValueError, match="square input"):
        SegmentationEngine(path, "cpu")
    shutil.copy(path, tmp_path / "refine.onnx")  # names a refiner itself
    with pytest.raises(ValueError, match="cannot name a refiner"):
        SegmentationEngine(path, "cpu")


@pytest.mark.parametrize("margin", ["0.5", "9", "wide"])
def test_a_bad_refine_margin_is_refused(
    tmp_path, onnx_model_factory, tiny_model_metadata, margin
) -> None:
    path = _pair(
        tmp_path, onnx_model_factory, tiny_model_metadata, **{"hc_studio.refine_margin": margin}
    )
    with pytest.raises(ValueError, match="refine_margin"):
        SegmentationEngine(path, "cpu")


def test_the_refining_pass_measures_the_head_and_says_how_far_the_passes_differ(
    tmp_path, onnx_model_factory, tiny_model_metadata
) -> None:
    phantom = make_phantom(seed=5)
    engine = SegmentationEngine(_pair(tmp_path, onnx_model_factory, tiny_model_metadata), "cpu")
    frame = Frame(phantom.image, "phantom.png", 0, 1, phantom.spacing)
    measured = measure_frame(frame, engine)
    record, truth = measured.record, biometry_from_ellipse(phantom.ellipse_px, phantom.spacing)
    assert measured.refinement is not None
    assert record.ellipse_px == measured.refinement.ellipse_px
    assert record.hc == pytest.approx(truth.hc, rel=0.01)
    assert (
        record.pass_disagreement is not None and record.pass_disagreement < REVIEW_PASS_DISAGREEMENT
    )
    assert record.status == "ok"
    # The frame probability is the refining pass inside its window, the first pass outside.
    window, first = measured.refinement.window, measured.prediction.frame_prob()
    rows, cols = (
        slice(window.y0, window.y0 + window.side),
        slice(window.x0, window.x0 + window.side),
    )
    outside = np.ones(first.shape, dtype=bool)
    outside[max(rows.start, 0) : rows.stop, max(cols.start, 0) : cols.stop] = False
    assert np.array_equal(measured.prob[outside], first[outside])
    assert not np.array_equal(measured.prob[~outside], first[~outside])


def test_passes_that_disagree_send_the_frame_to_review(
    tmp_path, onnx_model_factory, tiny_model_metadata, monkeypatch
) -> None:
    import hc_studio.core.refine as refine_module

    phantom = make_phantom(seed=5)
    engine = SegmentationEngine(_pair(tmp_path, onnx_model_factory, tiny_model_metadata), "cpu")
    real_fit = refine_module.fit_points_in_mm

    def larger(xy, spacing):  # the refining pass finds a head 15 % larger
        fitted = real_fit(xy, spacing)
        return Ellipse(fitted.cx, fitted.cy, fitted.a * 1.15, fitted.b * 1.15, fitted.angle)

    monkeypatch.setattr(refine_module, "fit_points_in_mm", larger)
    record = measure_frame(Frame(phantom.image, "p.png", 0, 1, phantom.spacing), engine).record
    assert record.status == "review"
    assert any(re.fullmatch(r"two passes differ by 1[45]\.\d % in HC", r) for r in record.reasons)


def test_no_head_in_the_window_is_a_review_with_the_first_ellipse(
    tmp_path, onnx_model_factory, tiny_model_metadata, monkeypatch
) -> None:
    import hc_studio.core.measure as measure_module

    phantom = make_phantom(seed=5)
    engine = SegmentationEngine(_pair(tmp_path, onnx_model_factory, tiny_model_metadata), "cpu")
    monkeypatch.setattr(measure_module, "refine", lambda *args, **kwargs: None)
    record = measure_frame(Frame(phantom.image, "p.png", 0, 1, phantom.spacing), engine).record
    assert record.status == "review" and "the refining pass found no head" in record.reasons
    assert record.hc is not None and record.pass_disagreement is None


def test_refine_returns_none_on_an_empty_window(
    tmp_path, onnx_model_factory, tiny_model_metadata
) -> None:
    engine = SegmentationEngine(_pair(tmp_path, onnx_model_factory, tiny_model_metadata), "cpu")
    blank = np.zeros((270, 400), dtype=np.float32)
    assert refine(blank, Ellipse(200, 135, 80, 60, 0.0), engine.refiner, 1.25) is None


def test_pass_disagreement_goes_through_the_csv_and_old_csvs_still_read(
    tmp_path, onnx_model_factory, tiny_model_metadata
) -> None:
    phantom = make_phantom(seed=5)
    engine = SegmentationEngine(_pair(tmp_path, onnx_model_factory, tiny_model_metadata), "cpu")
    record = measure_frame(Frame(phantom.image, "p.png", 0, 1, phantom.spacing), engine).record
    path = tmp_path / "m.csv"
    write_records_csv([record], path)
    (back,) = read_records_csv(path)
    assert back.pass_disagreement == pytest.approx(record.pass_disagreement, abs=1e-4)
    lines = path.read_text().splitlines()
    column = lines[0].split(",").index("pass_disagreement")
    old = [",".join(c for i, c in enumerate(line.split(",")) if i != column) for line in lines]
    path.write_text("\n".join(old) + "\n")
    (back,) = read_records_csv(path)
    assert back.pass_disagreement is None and back.hc == pytest.approx(record.hc, abs=0.01)
