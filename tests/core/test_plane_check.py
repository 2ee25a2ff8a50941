"""The head-plane check: geometry, the learned check's file and scores, and measuring with it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hc_studio.core import plane_check
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.inference import SegmentationEngine, default_model_path
from hc_studio.core.io import Frame, read_grey
from hc_studio.core.measure import is_failure, measure_frame
from hc_studio.core.plane_check import (
    FEATURES,
    HC_RANGE_MM,
    PlaneCheck,
    default_plane_check,
    geometry_reasons,
    head_plane_reasons,
    plane_features,
)
from hc_studio.core.records import Status
from hc_studio.core.spacing import Spacing

FRAME_HW = (540, 800)


@pytest.fixture(scope="module")
def shipped_engine() -> SegmentationEngine:
    return SegmentationEngine(default_model_path(), device="cpu")


@pytest.fixture(scope="module")
def tiny_engine(tiny_onnx_model: Path) -> SegmentationEngine:
    return SegmentationEngine(tiny_onnx_model, device="cpu")


def frame_of(pixels: np.ndarray, spacing: Spacing, name: str = "frame.png") -> Frame:
    return Frame(np.asarray(pixels, dtype=np.float32), name, 0, 1, spacing)


def assert_refused_without_numbers(record) -> None:
    assert record.status is Status.NOT_A_HEAD and record.reasons
    assert is_failure(record) and not record.ok
    assert record.ellipse_px is None
    assert record.hc is None and record.bpd is None and record.ofd is None and record.area is None
    assert record.ga_hadlock_weeks is None and record.ga_intergrowth_weeks is None


def test_an_all_black_frame_gives_no_numbers(shipped_engine) -> None:
    # hc-head-ersr-v1 drew an ellipse on black (reported as HC 102 mm, "review"), which the
    # check refuses as a blank frame; hc-head-ersr-v2 found no head there at all. Either way:
    # a failure without numbers, and a refusal says why.
    record = measure_frame(frame_of(np.zeros(FRAME_HW), Spacing.square(0.14)), shipped_engine)
    record = record.record
    assert record.status in (Status.NOT_A_HEAD, Status.NO_HEAD)
    assert is_failure(record) and record.hc is None and record.ga_hadlock_weeks is None
    if record.status is Status.NOT_A_HEAD:
        assert_refused_without_numbers(record)
        assert "blank frame" in record.status_text


def test_an_empty_bright_ring_is_not_a_fetal_head(shipped_engine) -> None:
    # A ring with nothing inside passed the learned check ("ok", HC 969 px) before the
    # inside-texture rule: a head plane always shows brain and speckle inside the skull.
    import cv2

    ring = np.zeros(FRAME_HW, np.float32)
    cv2.circle(ring, (400, 270), 150, 1.0, 12)
    record = measure_frame(frame_of(ring, Spacing.uncalibrated()), shipped_engine).record
    assert_refused_without_numbers(record)
    assert "nothing inside the skull" in record.status_text


def test_noise_is_not_a_fetal_head(shipped_engine) -> None:
    noise = np.random.default_rng(5).normal(0.3, 0.15, FRAME_HW).clip(0, 1)
    record = measure_frame(frame_of(noise, Spacing.square(0.14)), shipped_engine).record
    # Refused, or nothing found at all: either way a failure without numbers.
    assert is_failure(record) and record.hc is None and record.ga_hadlock_weeks is None


def test_hc18_frames_pass_and_their_inverted_copies_do_not(hc18_dir: Path, shipped_engine) -> None:
    # Frames of patients the shipped model never saw in training (its held-out side).
    for name in ("008_HC.png", "019_HC.png", "036_HC.png"):
        pixels = read_grey(hc18_dir / "training_set" / name)
        record = measure_frame(frame_of(pixels, Spacing.square(0.12), name), shipped_engine).record
        assert record.status is not Status.NOT_A_HEAD, (name, record.status_text)
        assert record.hc is not None
        inverted = measure_frame(frame_of(1.0 - pixels, Spacing.square(0.12)), shipped_engine)
        assert is_failure(inverted.record), (name, inverted.record.status_text)


def test_the_phantom_passes_with_the_test_model(phantom, tiny_engine) -> None:
    record = measure_frame(frame_of(phantom.image, phantom.spacing), tiny_engine).record
    assert record.status == "ok" and record.hc is not None


def test_a_refusing_check_gives_the_status_and_no_numbers(
    phantom, tiny_engine, monkeypatch
) -> None:
    shipped = default_plane_check()
    strict = PlaneCheck(
        shipped.features, shipped.mean, shipped.std, shipped.weights, shipped.bias - 100.0, 0.5
    )
    monkeypatch.setattr(plane_check, "_default_check", strict)
    measured = measure_frame(frame_of(phantom.image, phantom.spacing), tiny_engine)
    assert_refused_without_numbers(measured.record)
    assert "head-plane score 0.00 < 0.50" in measured.record.status_text
    assert measured.record.fit_iou is not None  # the evidence stays for a person to see
    assert measured.prob is not None


def test_geometry_sanity() -> None:
    centred = Ellipse(400.0, 270.0, 200.0, 150.0, 0.3)
    calibrated = Spacing.square(0.14)
    assert geometry_reasons(centred, FRAME_HW, calibrated) == []
    outside = Ellipse(-60.0, 270.0, 100.0, 80.0, 0.0)
    reasons = geometry_reasons(outside, FRAME_HW, Spacing.uncalibrated())
    assert "ellipse centre outside the frame" in reasons
    assert any(reason.startswith("only ") and "inside the frame" in reason for reason in reasons)
    tiny_head = Ellipse(400.0, 270.0, 20.0, 15.0, 0.0)  # perimeter 110.4 px: 15.5 mm at 0.14
    (reason,) = geometry_reasons(tiny_head, FRAME_HW, calibrated)
    low, high = HC_RANGE_MM
    assert reason == f"HC 15 mm outside the plausible {low:.0f}-{high:.0f} mm"
    assert geometry_reasons(tiny_head, FRAME_HW, Spacing.uncalibrated()) == []  # pixels only
    huge = geometry_reasons(centred, FRAME_HW, Spacing.square(0.5))  # HC ~ 550 mm
    assert huge and huge[0].startswith("HC 5")


def test_features_are_finite_and_see_the_skull(phantom, tiny_engine) -> None:
    prediction = tiny_engine.predict(phantom.image)
    features = plane_features(phantom.image, prediction.prob, phantom.ellipse_px, 0.98, 0.97)
    assert set(features) == set(FEATURES)
    assert all(math.isfinite(value) for value in features.values())
    # Phantom grey levels: skull ~0.9, inside ~0.35, outside ~0.1 (the band also holds edge pixels).
    assert features["skull_minus_inside"] > 0.15 and features["skull_minus_outside"] > 0.3
    assert features["skull_coverage"] == 1.0
    assert features["inside_fraction"] == 1.0
    flipped = plane_features(1.0 - phantom.image, prediction.prob, phantom.ellipse_px, 0.98, 0.97)
    assert flipped["skull_minus_inside"] < 0 and flipped["skull_coverage"] == 0.0


def test_blank_frames_are_refused_before_any_score(phantom) -> None:
    prob = np.zeros((64, 96), np.float32)
    reasons = head_plane_reasons(
        np.full((270, 400), 0.4), prob, phantom.ellipse_px, 0.99, 0.99, Spacing.square(0.2)
    )
    assert reasons == ["blank frame (no contrast)"]


def test_the_shipped_check_belongs_to_the_shipped_model(shipped_engine) -> None:
    check = default_plane_check()
    assert check.model == shipped_engine.name
    assert check.features == FEATURES
    assert 0.0 < check.threshold < 1.0
    assert "benchmarks/fit_plane_check.py" in check.source


def test_check_json_round_trip_and_bad_files(tmp_path: Path) -> None:
    check = default_plane_check()
    path = tmp_path / "check.json"
    path.write_text(json.dumps(check.to_json()))
    assert PlaneCheck.load(path) == check
    features = dict.fromkeys(FEATURES, 0.5)
    assert 0.0 <= check.score(features) <= 1.0
    matrix = np.array([[features[name] for name in check.features]])
    assert check.scores(matrix)[0] == pytest.approx(check.score(features))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**check.to_json(), "std": [0.0] * len(FEATURES)}))
    with pytest.raises(ValueError, match=r"broken\.json: not a usable plane check .*std"):
        PlaneCheck.load(broken)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**check.to_json(), "features": ["colour", *FEATURES[1:]]}))
    with pytest.raises(ValueError, match=r"unknown\.json: .*unknown features \['colour'\]"):
        PlaneCheck.load(unknown)


def test_the_networks_resized_frame_gives_the_same_features(phantom, tiny_engine) -> None:
    """The plane check reads the frame as the network saw it instead of resizing it again."""
    from hc_studio.core.ellipse import ellipse_from_probability

    prediction = tiny_engine.predict(phantom.image)
    assert prediction.frame_on_grid is not None
    assert prediction.frame_on_grid.shape == prediction.prob.shape
    fit = ellipse_from_probability(prediction.prob, prediction.frame_shape)
    args = (phantom.image, prediction.prob, fit.ellipse_px, fit.fit_iou, 0.9)
    resized_here = plane_check.plane_features(*args)
    assert plane_check.plane_features(*args, prediction.frame_on_grid) == resized_here
    wrong_grid = np.zeros((7, 9), np.float32)  # not the map's grid: resized here again
    assert plane_check.plane_features(*args, wrong_grid) == resized_here


def test_the_fits_ellipse_on_the_map_and_component_areas_give_the_same_features(
    phantom, tiny_engine
) -> None:
    """`measure_frame` hands the plane check what the fit worked out (one connected-components
    pass, one mapping of the ellipse to the map): the features are those worked out again."""
    from hc_studio.core.ellipse import ellipse_from_probability

    prediction = tiny_engine.predict(phantom.image)
    prob = prediction.prob.copy()
    prob[:3, :3] = 0.9  # a stray blob, so that the areas are more than the head's
    fit = ellipse_from_probability(prob, prediction.frame_shape)
    assert fit.component_areas.size == 2
    args = (phantom.image, prob, fit.ellipse_px, fit.fit_iou, 0.9, prediction.frame_on_grid)
    worked_out_again = plane_features(*args)
    shared = plane_features(
        *args, ellipse_on_map=fit.ellipse_on_map, component_areas=fit.component_areas
    )
    assert shared == worked_out_again
    assert shared["stray_fraction"] > 0


@pytest.mark.parametrize("centre", [(48.0, 32.0), (6.0, 60.0), (-200.0, 30.0)])
def test_the_bands_read_in_the_window_around_the_head_match_the_whole_map(centre) -> None:
    """The band features are read in the window that holds the bands; over the whole map they
    come out bit for bit the same, for a head inside the map, one cut by its edge and one off
    it (no band pixels: the fallback values)."""
    rng = np.random.default_rng(3)
    map_hw = (64, 96)
    grey = rng.random(map_hw, dtype=np.float32)  # a frame of the map's size: grid = frame
    prob = rng.random(map_hw, dtype=np.float32)
    ellipse = Ellipse(centre[0], centre[1], 20.0, 14.0, 0.4)
    rows, cols = np.mgrid[: map_hw[0], : map_hw[1]]
    radius_sq = ellipse.normalised_radius_sq(cols.astype(float), rows.astype(float))

    def in_band(low: float, high: float) -> np.ndarray:
        return (radius_sq >= low**2) & (radius_sq < high**2)

    def band_mean(values: np.ndarray, low: float, high: float) -> float:
        selected = in_band(low, high)
        return float(values[selected].mean()) if selected.any() else math.nan

    skull = band_mean(grey, 0.85, 1.0)
    skull = float(grey.mean()) if math.isnan(skull) else skull
    inside, outside = band_mean(grey, 0.0, 0.7), band_mean(grey, 1.1, 1.4)
    inside = skull if math.isnan(inside) else inside
    outside = skull if math.isnan(outside) else outside
    wide, core = in_band(0.8, 1.05), in_band(0.0, 0.7)
    p90 = float(np.percentile(grey[wide], 90)) if wide.any() else skull
    median = float(np.median(grey[core])) if core.any() else inside
    prob_inside, prob_outside = band_mean(prob, 0.0, 0.7), band_mean(prob, 1.1, 1.4)

    features = plane_features(grey, prob, ellipse, 0.9, 0.9)

    assert features["skull_minus_inside"] == skull - inside
    assert features["skull_minus_outside"] == skull - outside
    assert features["skull_p90_minus_inside"] == p90 - median
    assert features["prob_inside"] == (0.0 if math.isnan(prob_inside) else prob_inside)
    assert features["prob_outside"] == (1.0 if math.isnan(prob_outside) else prob_outside)
    if centre[0] < 0:
        assert features["skull_coverage"] == 0.0 and features["prob_outside"] == 1.0
