"""CSV injection: formula-like text cells are neutralised in every CSV the project writes."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from hc_studio.core.csv_safety import SafeDictWriter, neutralise_cell, restore_cell, safe_writer
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.export import read_records_csv, write_hc18_submission, write_records_csv
from hc_studio.core.records import MeasurementRecord, Status
from hc_studio.core.spacing import Spacing

REPO = Path(__file__).resolve().parents[2]
HYPERLINK = '=HYPERLINK("evil.example","open").png'  # a legal file name


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("-x.png", "'-x.png"),
        ("+cmd", "'+cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),  # so that reading back gives exactly "'=x"
        ("-1.5", "-1.5"),
        ("+2e-3", "+2e-3"),
        ("'plain", "'plain"),
        ("001_HC.png", "001_HC.png"),
        ("", ""),
    ],
)
def test_cells_are_neutralised_and_restored(text: str, cell: str) -> None:
    assert neutralise_cell(text) == cell
    assert restore_cell(cell) == text


def test_numbers_and_none_are_left_alone() -> None:
    assert neutralise_cell(-1.5) == -1.5 and neutralise_cell(None) is None


def record(file: str) -> MeasurementRecord:
    return MeasurementRecord(
        file,
        0,
        Spacing.square(0.1, "csv"),
        status=Status.REVIEW,
        reasons=("fit IoU 0.70",),
        ellipse_px=Ellipse(50.0, 40.0, 30.0, 20.0, 0.0),
        model="-tiny",
    )


def test_measurement_and_hc18_csvs_neutralise_file_names(tmp_path: Path) -> None:
    records = [record(HYPERLINK), record("-x.png")]
    path, hc18 = tmp_path / "m.csv", tmp_path / "hc18.csv"
    write_records_csv(records, path, {"note": ["=1+1", -1.5]})
    write_hc18_submission(records, hc18)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == ["'" + HYPERLINK, "'-x.png"]
    assert rows[0]["model"] == "'-tiny" and [row["note"] for row in rows] == ["'=1+1", "-1.500"]
    assert [r.file for r in read_records_csv(path)] == [HYPERLINK, "-x.png"]
    assert read_records_csv(path)[0].model == "-tiny"
    with hc18.open(newline="") as handle:
        assert [row["filename"] for row in csv.DictReader(handle)] == ["'" + HYPERLINK, "'-x.png"]


def test_both_writer_kinds_neutralise() -> None:
    text = io.StringIO()
    safe_writer(text).writerow(["-x.png", -1.5, "ok"])
    writer = SafeDictWriter(text, fieldnames=["file"])
    writer.writerow({"file": "@x"})
    assert text.getvalue().splitlines() == ["'-x.png,-1.5,ok", "'@x"]


def test_every_csv_writer_of_the_project_goes_through_the_helper() -> None:
    raw = re.compile(r"csv\.(writer|DictWriter)\(")
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("core", "app", "benchmarks")
        for path in (REPO / folder).rglob("*.py")
        if path.name != "csv_safety.py" and raw.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_measure_neutralises_formula_like_frame_names(tmp_path, tiny_onnx_model, monkeypatch):
    import cv2
    from hc_studio.core.cli import main
    from hc_studio.core.phantom import make_phantom

    monkeypatch.chdir(tmp_path)
    image = (make_phantom(seed=2).image * 255).astype("uint8")
    for name in (HYPERLINK, "-x.png"):
        assert cv2.imwrite(str(tmp_path / name), image)
    argv = ["measure", "--model", str(tiny_onnx_model), "--pixel-size", "0.4"]
    argv += ["--out", "m.csv", "--hc18-out", "hc18.csv", "--", HYPERLINK, "-x.png"]
    assert main(argv) == 0
    first_cells = [line.split(",")[0] for line in Path("m.csv").read_text().splitlines()[1:]]
    assert sorted(first_cells) == sorted(['"\'=HYPERLINK(""evil.example""', "'-x.png"])
    assert sorted(r.file for r in read_records_csv("m.csv")) == sorted([HYPERLINK, "-x.png"])
    hc18_lines = Path("hc18.csv").read_text().splitlines()
    assert all(line.startswith(("filename", "'", "\"'")) for line in hc18_lines)
