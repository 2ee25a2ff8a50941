"""The printed exam report: its content, the PDF's extracted text, and `measure --report`."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.cli import main
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import Dating, group_into_exams
from hc_studio.core.exam.correction_log import CorrectionEntry
from hc_studio.core.exam.grouping import frame_key
from hc_studio.core.exam.kept_caliper import KeptCaliper
from hc_studio.core.export import read_records_csv
from hc_studio.core.measure import record_from_ellipse
from hc_studio.core.phantom import make_phantom
from hc_studio.core.report import build_exam_report, render_exam_pdf, report_paths
from hc_studio.core.skull import bpd_outer_inner
from hc_studio.core.spacing import Spacing

EQUATIONS = ("Hadlock 1984", "INTERGROWTH-21st (Papageorghiou 2016)")
SPACING = Spacing.square(0.14, "csv")


def pdf_text(data: bytes) -> str:
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def phantom_exam(tmp_path: Path, hcs_px: list[float]):
    """An exam of phantom frames (one folder) and a reader giving their pixels."""
    pixels, records = {}, []
    for index, a in enumerate(hcs_px):
        ellipse = Ellipse.normalised(200, 135, a, a * 0.8, 0.2)
        phantom = make_phantom((270, 400), ellipse, SPACING, seed=index, ring_px=8)
        path = str(tmp_path / "patient" / f"f{index}.png")
        record = record_from_ellipse(path, 0, SPACING, ellipse, "tiny-threshold", origin="auto")
        records.append(record)
        pixels[path] = phantom.image
    (exam,) = group_into_exams(records)
    return exam, lambda record: pixels[record.file]


def test_report_content_holds_every_measurement_and_the_exam_value(tmp_path: Path) -> None:
    exam, reader = phantom_exam(tmp_path, [120.0, 124.0, 128.0, 100.0])
    exam.exam_date = dt.date(2025, 6, 1)
    exam.dating = Dating.from_lmp(dt.date(2025, 6, 1) - dt.timedelta(days=20 * 7))
    exam.operator = "=A. Sonographer"
    entry = CorrectionEntry.from_records(
        exam.records[0], exam.records[0], "ana", dt.datetime(2025, 6, 1, 10, tzinfo=dt.UTC)
    )

    report = build_exam_report(exam, reader, corrections=[entry], model_details={"file": "m.onnx"})
    text = report.text()

    for record in exam.records:
        assert f"{record.hc:.1f} mm" in text
    assert "mean of 3" in text and "SD " in text and "BPD outer-to-inner" in text
    assert "LMP 2025-01-12 -> 20w0d at the exam date" in text and "Exam date: 2025-06-01" in text
    for name in EQUATIONS:
        assert name in text
    assert (
        "Radiology 1984;152:497-501" in text
        and "Hadlock 1984 BPD equations: outer-to-inner" in text
    )
    assert "source csv" in text and "Model: tiny-threshold (file m.onnx)" in text
    assert "Origin: 4 automatic, 0 edited" in text
    assert "Corrections in this exam: 0 of 1 accepted measurements corrected" in text
    assert len(report.images) == 3 and all(image.jpeg for image in report.images)
    rows = {row[0]: row for row in report.measurements.rows}
    assert rows["f3.png"][-1] == "not chosen" and rows["f0.png"][-1] == "yes"
    outer_inner = [float(row[5].split()[0]) for row in report.measurements.rows]
    outer_outer = [float(row[4].split()[0]) for row in report.measurements.rows]
    for oo, oi in zip(outer_outer, outer_inner, strict=True):
        assert oo - oi == pytest.approx(8 * 0.14, abs=0.3)


def test_extreme_centile_is_a_flag_and_unreadable_frames_say_why(tmp_path: Path) -> None:
    exam, reader = phantom_exam(tmp_path, [120.0])
    exam.dating = Dating.from_ga(38)  # a 20-week head read against 38 weeks

    def broken(record):
        raise OSError("disk gone")

    report = build_exam_report(exam, broken)
    text = report.text()
    assert "EXTREME" in text and "z -" not in text
    assert "image not readable: disk gone" in text and report.images[0].jpeg is None
    assert "FLAG: GA by biometry" in text


def test_frames_gone_from_disk_keep_their_rows(tmp_path: Path) -> None:
    exam, _ = phantom_exam(tmp_path, [120.0, 125.0])  # the records' files were never written
    report = build_exam_report(exam)  # the default reader opens the files
    assert [row[3] for row in report.measurements.rows] == [
        f"{record.hc:.1f} mm" for record in exam.records
    ]
    assert all(row[5] == "-" for row in report.measurements.rows)  # no image: no outer-to-inner
    assert all("image not readable" in image.caption for image in report.images)
    assert "file not found" in report.images[0].caption


def test_pdf_text_holds_the_values_and_escapes_markup(tmp_path: Path) -> None:
    exam, reader = phantom_exam(tmp_path, [120.0, 130.0])
    exam.dating = Dating.from_ga(20)
    exam.operator = "<b>Ana & Bo</b>"
    data = render_exam_pdf(build_exam_report(exam, reader))
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    for record in exam.records:
        assert f"{record.hc:.1f} mm" in text
    assert all(name.split(" (")[0] in text for name in EQUATIONS)
    assert "<b>Ana & Bo</b>" in text


def test_report_paths_for_several_exams(tmp_path: Path) -> None:
    assert report_paths(tmp_path / "r.pdf", 3) == [
        tmp_path / "r.pdf",
        tmp_path / "r-2.pdf",
        tmp_path / "r-3.pdf",
    ]


def write_frames(folder: Path, seeds: list[int]) -> list[str]:
    folder.mkdir(parents=True)
    names = []
    for seed in seeds:
        image = make_phantom(seed=seed).image
        cv2.imwrite(str(folder / f"p{seed}.png"), np.round(image * 255).astype(np.uint8))
        names.append(f"p{seed}.png")
    return names


def test_measure_report_holds_every_hc_of_the_csv(tiny_onnx_model, tmp_path: Path) -> None:
    names = write_frames(tmp_path / "exam1", [4, 5]) + write_frames(tmp_path / "exam2", [6])
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("filename,pixel size(mm)\n" + "".join(f"{n},0.14\n" for n in names))
    out, report = tmp_path / "m.csv", tmp_path / "r.pdf"
    argv = ["measure", str(tmp_path / "exam1"), str(tmp_path / "exam2"), "--pixel-csv"]
    argv += [str(sizes), "--model", str(tiny_onnx_model), "--out", str(out)]
    argv += ["--report", str(report), "--ga-weeks", "21"]

    assert main(argv) == 0

    records = read_records_csv(out)
    first, second = report, tmp_path / "r-2.pdf"
    texts = {path: pdf_text(path.read_bytes()) for path in (first, second)}
    for record in records:
        path = first if "exam1" in record.file else second
        assert f"{record.hc:.1f}" in texts[path]
    for text in texts.values():
        assert "Hadlock 1984" in text and "INTERGROWTH-21st" in text
        assert "was not applied: the frames form 2 exams" in text
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: checked with pypdf only")
    layout = subprocess.run(["pdftotext", str(first), "-"], capture_output=True, text=True)
    assert all(f"{r.hc:.1f}" in layout.stdout for r in records if "exam1" in r.file)


def test_overlay_draws_the_ellipse_and_the_far_inner_caliper(tmp_path: Path) -> None:
    from hc_studio.core.report.content import overlay_jpeg
    from hc_studio.core.skull import bpd_outer_inner

    exam, reader = phantom_exam(tmp_path, [120.0])
    record = exam.records[0]
    pixels = reader(record)
    skull = bpd_outer_inner(pixels, record.ellipse_px, record.spacing)
    image = cv2.imdecode(np.frombuffer(overlay_jpeg(pixels, record, skull), np.uint8), 1)
    assert image.shape[:2] == pixels.shape
    x, y = np.round(record.ellipse_px.points(8)[1]).astype(int)
    blue, green, red = image[y, x].astype(int)
    assert green > red + 60 and green > blue + 60  # the ellipse is drawn in green
    x, y = np.round(np.array(skull.near_outer_xy) * 0.5 + np.array(skull.far_outer_xy) * 0.5)
    blue, green, red = image[int(y), int(x)].astype(int)
    assert blue > red + 60  # the outer-to-outer caliper (cyan) crosses the centre


def test_report_uses_the_selection_the_kept_caliper_and_summarises_the_session(
    tmp_path: Path,
) -> None:
    exam, reader = phantom_exam(tmp_path, [120.0, 124.0, 128.0])
    first, second = exam.records[0], exam.records[1]
    skull = bpd_outer_inner(reader(first), first.ellipse_px, SPACING)
    near = skull.near_outer_xy
    far = tuple(n + 0.8 * (f - n) for n, f in zip(near, skull.far_outer_xy, strict=True))
    kept = KeptCaliper(near, far, skull.far_outer_xy, first.ellipse_px, skull.outer_inner)
    when = dt.datetime(2025, 6, 1, 10, tzinfo=dt.UTC)
    edited = CorrectionEntry.from_records(first, first, "ana", when).with_outer_inner(
        skull.outer_inner, kept.value(SPACING)
    )
    plain = CorrectionEntry.from_records(second, second, "ana", when)
    elsewhere = CorrectionEntry.from_records(
        second.replace(file="/other/x.png"), second.replace(file="/other/x.png"), "ana", when
    )

    report = build_exam_report(
        exam,
        reader,
        selected={"hc": frame_key(second)},
        calipers={frame_key(first): kept},
        corrections=[edited, plain],
        session_corrections=[edited, plain, elsewhere],
    )
    values = {row[0]: row for row in report.values.rows}
    assert values["HC"][1] == f"{second.hc:.1f} mm"
    assert values["HC"][2] == "selected measurement (f1.png)"
    rows = {row[0]: row for row in report.measurements.rows}
    assert rows["f0.png"][5] == f"{kept.value(SPACING):.1f} mm (edited)"
    assert rows["f1.png"][-1] == "yes, selected for HC" and rows["f2.png"][5].endswith(" mm")
    text = pdf_text(render_exam_pdf(report))
    assert "Corrections in this exam: 1 of 2 accepted measurements corrected" in text
    assert "Corrections in this session: 1 of 3 accepted measurements corrected (33 %)" in text
    assert f"{kept.value(SPACING):.1f} mm\n(edited)" in text  # the cell wraps
