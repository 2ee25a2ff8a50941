"""measure_frame / record_from_ellipse / measure_paths on phantoms with the tiny ONNX model."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.biometry import biometry_from_ellipse
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.inference import SegmentationEngine
from hc_studio.core.io import Frame
from hc_studio.core.measure import (
    border_confidence,
    is_failure,
    measure_frame,
    measure_paths,
    record_from_ellipse,
)
from hc_studio.core.phantom import make_phantom
from hc_studio.core.records import Status
from hc_studio.core.spacing import Spacing


@pytest.fixture(scope="module")
def engine(tiny_onnx_model: Path) -> SegmentationEngine:
    return SegmentationEngine(tiny_onnx_model, device="cpu")


def frame_of(image: np.ndarray, spacing: Spacing, path: str = "phantom.png") -> Frame:
    return Frame(image.astype(np.float32), path, 0, 1, spacing)


def write_png(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    return path


def test_phantom_is_measured_like_its_truth(phantom, engine) -> None:
    measured = measure_frame(frame_of(phantom.image, phantom.spacing), engine)
    record, truth = measured.record, biometry_from_ellipse(phantom.ellipse_px, phantom.spacing)
    assert record.status == "ok" and record.ok and record.origin == "auto"
    assert record.unit == "mm" and record.model == "tiny-threshold"
    assert record.hc == pytest.approx(truth.hc, rel=0.01)
    assert record.bpd == pytest.approx(truth.bpd, rel=0.02)
    assert record.ofd == pytest.approx(truth.ofd, rel=0.02)
    assert record.ellipse_px.cx == pytest.approx(phantom.ellipse_px.cx, abs=1.0)
    assert record.ellipse_px.cy == pytest.approx(phantom.ellipse_px.cy, abs=1.0)
    assert record.fit_iou > 0.95 and record.confidence > 0.9
    assert measured.prob.shape == phantom.image.shape and measured.prob.dtype == np.float32
    assert record.ga_intergrowth_note  # a value or the reason why there is none
    assert record.centile is None and record.z_score is None  # no GA given


def test_anisotropic_spacing_is_measured_in_mm_space(engine) -> None:
    spacing = Spacing(0.12, 0.18, "user")
    phantom = make_phantom(seed=3, spacing=spacing)
    record = measure_frame(frame_of(phantom.image, spacing), engine).record
    truth = biometry_from_ellipse(phantom.ellipse_px, spacing)
    assert record.hc == pytest.approx(truth.hc, rel=0.01)


def test_black_frame_has_no_head(engine) -> None:
    measured = measure_frame(frame_of(np.zeros((270, 400)), Spacing.square(0.2)), engine)
    record = measured.record
    assert record.status is Status.NO_HEAD and is_failure(record) and not record.ok
    assert record.hc is None and record.ellipse_px is None
    assert measured.prob.shape == (270, 400)


def test_uncalibrated_frame_is_measured_in_pixels_without_ga(phantom, engine) -> None:
    record = measure_frame(frame_of(phantom.image, Spacing.uncalibrated()), engine).record
    truth_px = biometry_from_ellipse(phantom.ellipse_px, Spacing.uncalibrated())
    assert record.unit == "px" and record.ok
    assert record.hc == pytest.approx(truth_px.hc, rel=0.01)
    assert record.ga_hadlock_weeks is None and "uncalibrated" in record.ga_hadlock_note


def test_non_elliptical_segmentation_is_flagged_for_review(engine, monkeypatch) -> None:
    # A plus-shaped blob is no head plane: let every frame pass the head-plane check here, so
    # that the review path behind it is what is tested.
    from hc_studio.core import plane_check

    shipped = plane_check.default_plane_check()
    monkeypatch.setattr(plane_check, "_default_check", replace(shipped, bias=shipped.bias + 100))
    image = np.full((270, 400), 0.1, np.float32)
    image[60:210, 185:215] = 0.9  # a plus-shaped blob: nothing like a head
    image[120:150, 110:290] = 0.9
    record = measure_frame(frame_of(image, Spacing.square(0.2)), engine).record
    assert record.status is Status.REVIEW and record.reasons[0].startswith("fit IoU")
    assert record.status_text.startswith("review: fit IoU")
    assert record.hc is not None and not record.ok and not is_failure(record)


def test_border_confidence_separates_crisp_from_hesitant_maps() -> None:
    ellipse = Ellipse(50.0, 40.0, 30.0, 20.0, 0.3)
    rows, cols = np.mgrid[:80, :100]
    inside = ellipse.normalised_radius_sq(cols, rows) <= 1
    crisp = np.where(inside, 0.99, 0.01).astype(np.float32)
    hesitant = np.where(inside, 0.6, 0.4).astype(np.float32)
    assert border_confidence(crisp, ellipse) == pytest.approx(0.99, abs=1e-6)
    assert border_confidence(hesitant, ellipse) == pytest.approx(0.6, abs=1e-6)


def test_edited_ellipse_recomputes_everything(phantom, engine) -> None:
    auto = measure_frame(frame_of(phantom.image, phantom.spacing), engine).record
    bigger = Ellipse(auto.ellipse_px.cx, auto.ellipse_px.cy, 130.0, 110.0, 0.2)
    edited = record_from_ellipse(
        auto.file,
        0,
        phantom.spacing,
        bigger,
        auto.model,
        base=auto.replace(accepted=True),
        ga_weeks=15.0,
    )
    expected = biometry_from_ellipse(bigger, phantom.spacing)
    assert edited.origin == "edited" and edited.status == "ok"
    assert edited.hc == pytest.approx(expected.hc) and edited.bpd == pytest.approx(expected.bpd)
    assert edited.fit_iou == auto.fit_iou and edited.accepted is True
    assert edited.ga_hadlock_weeks is not None and edited.ga_hadlock_weeks > auto.ga_hadlock_weeks
    assert edited.z_score is not None and 0 < edited.centile < 100


def test_measure_paths_goes_on_past_bad_files(tmp_path: Path, engine) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    good = [make_phantom(seed=seed) for seed in (1, 2)]
    for index, item in enumerate(good):
        write_png(folder / f"good{index}.png", item.image)
    write_png(folder / "black.png", np.zeros((270, 400)))
    whole = cv2.imencode(".png", np.full((270, 400), 128, np.uint8))[1].tobytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    progress: list[tuple[int, int, str]] = []
    records = list(
        measure_paths(
            [folder, tmp_path / "missing.png"],
            engine,
            pixel_csv_sizes={"good0.png": 0.14, "GOOD1.PNG": 0.14},
            on_progress=lambda i, n, record: progress.append((i, n, Path(record.file).name)),
        )
    )
    by_name = {Path(record.file).name: record for record in records}
    assert set(by_name) == {"good0.png", "good1.png", "black.png", "truncated.png", "missing.png"}
    for index, item in enumerate(good):
        record = by_name[f"good{index}.png"]
        assert record.ok and record.spacing == Spacing.square(0.14, "csv")
        truth = biometry_from_ellipse(item.ellipse_px, Spacing.square(0.14, "csv"))
        assert record.hc == pytest.approx(truth.hc, rel=0.015)
    assert by_name["black.png"].status is Status.NO_HEAD
    assert by_name["black.png"].spacing.source == "none"
    for name in ("truncated.png", "missing.png"):
        assert by_name[name].status is Status.ERROR and by_name[name].reasons
        assert by_name[name].status_text.startswith("error: ")
    assert [n for _, n, _ in progress] == [5] * 5
    assert [i for i, _, _ in progress] == [1, 2, 3, 4, 5]


def test_measure_paths_spacing_override_and_cancel(tmp_path: Path, engine, phantom) -> None:
    paths = [write_png(tmp_path / f"f{index}.png", phantom.image) for index in range(3)]
    override = Spacing.square(0.3, "user")
    records = list(measure_paths(paths, engine, spacing_override=override, pixel_csv_sizes={}))
    assert [record.spacing for record in records] == [override] * 3
    seen: list[str] = []
    cancelled = measure_paths(
        paths,
        engine,
        on_progress=lambda i, n, r: seen.append(r.file),
        cancel=lambda: len(seen) >= 2,
    )
    assert len(list(cancelled)) == 2


def test_ga_weeks_gives_centile(phantom, engine) -> None:
    record = measure_frame(frame_of(phantom.image, phantom.spacing), engine, ga_weeks=14.0).record
    assert record.z_score is not None and math.isfinite(record.z_score)
    assert 0 <= record.centile <= 100


def test_dangling_link_in_a_folder_gives_an_error_record_naming_it(tmp_path, engine) -> None:
    from hc_studio.core.measure import measure_paths

    cv2.imwrite(str(tmp_path / "a.png"), (make_phantom(seed=1).image * 255).astype(np.uint8))
    (tmp_path / "b.png").symlink_to(tmp_path / "moved-away.png")
    records = list(measure_paths([tmp_path], engine, spacing_override=Spacing.square(0.4)))
    assert [Path(r.file).name for r in records] == ["a.png", "b.png"]
    assert records[1].status is Status.ERROR
    assert "broken symbolic link" in records[1].status_text
