"""`hc-studio measure --best-frame --sr-out` end to end on a synthetic cine DICOM.

The clip is built from a shipped sample frame: the frame itself among degraded (noise, blur, low
contrast), shifted and rotated versions of it, written as a multi-frame DICOM with pydicom and
measured with the shipped model.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from hc_studio.core.cli import main
from hc_studio.core.dicom_sr import read_sr_values
from hc_studio.core.inference import default_model_path
from hc_studio.core.phantom_dicom import (
    DEGRADED_VERSIONS,
    GOOD_VERSION,
    degraded_versions,
    write_cine_dicom,
)
from pydicom.dataset import Dataset

SAMPLE, SAMPLE_MM = "291_HC.png", 0.103654762  # its HC18 pixel size (samples/pixel_size.csv)
GOOD_INDEX, VERSIONS = GOOD_VERSION, DEGRADED_VERSIONS


def degraded_clip(image: np.ndarray) -> np.ndarray:
    """(7, H, W) uint8: the versions named in VERSIONS, the untouched frame at GOOD_INDEX."""
    frames = degraded_versions(image.astype(np.float32) / 255)
    return np.stack([np.round(f * 255).astype(np.uint8) for f in frames])


def write_cine(path: Path, frames: np.ndarray, pixel_mm: float) -> Dataset:
    identifiers = {"PatientID": "CINE-1", "PatientName": "Test^Cine", "AccessionNumber": "A-17"}
    write_cine_dicom(path, frames, 25.0, pixel_mm, None, dt.date(2026, 4, 1), identifiers)
    return pydicom.dcmread(path)


@pytest.fixture(scope="module")
def shipped_model() -> Path:
    model = default_model_path()
    if model is None:
        pytest.skip("no model shipped in hc_studio.models")
    return model


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_best_frame_and_sr_on_a_synthetic_cine(shipped_model, tmp_path: Path, capsys) -> None:
    sample = resources.files("hc_studio.resources").joinpath("samples", SAMPLE)
    image = cv2.imdecode(np.frombuffer(sample.read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
    cine = write_cine(tmp_path / "cine.dcm", degraded_clip(image), SAMPLE_MM)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), image)
    out, sr_dir = tmp_path / "m.csv", tmp_path / "sr"
    argv = ["measure", str(tmp_path / "cine.dcm"), str(still), "--model", str(shipped_model)]
    argv += ["--device", "cpu", "--pixel-size", str(SAMPLE_MM), "--best-frame"]
    argv += ["--sr-out", str(sr_dir), "--out", str(out)]
    main(argv)  # exit 1 is expected: the noisy frame has no head

    rows = rows_of(out)
    cine_rows = [row for row in rows if row["file"].endswith("cine.dcm")]
    marks = [row["best_frame"] for row in cine_rows]
    assert marks == ["1" if i == GOOD_INDEX else "0" for i in range(len(VERSIONS))], [
        (v, row["status"], row["confidence"], row["fit_iou"]) for v, row in zip(VERSIONS, cine_rows)
    ]
    assert [row["best_frame"] for row in rows if row["file"] == str(still)] == [""]

    # One SR per exam: the cine's study, and the folder of the PNG.
    err = capsys.readouterr().err
    assert err.count("structured report -> ") == 2
    sr_path = sr_dir / f"SR_{cine.StudyInstanceUID}.dcm"
    sr = pydicom.dcmread(sr_path)
    assert (sr.PatientID, sr.AccessionNumber) == ("CINE-1", "A-17")
    values = read_sr_values(sr)
    best = cine_rows[GOOD_INDEX]
    for name, column in (
        ("Head Circumference", "hc"),
        ("Biparietal Diameter", "bpd_outer_outer"),
        ("Occipital-Frontal Diameter", "ofd_outer_outer"),
    ):
        assert values[name] == [pytest.approx(float(best[column]), abs=0.1)]
    assert values["Gestational Age"] == [
        pytest.approx(float(best["ga_hadlock_weeks"]) * 7, abs=0.1)
    ]
    if shutil.which("dciodvfy"):
        check = subprocess.run(["dciodvfy", str(sr_path)], capture_output=True, text=True)
        errors = [line for line in check.stderr.splitlines() if line.startswith("Error")]
        assert errors == [], check.stderr


def test_without_the_options_the_csv_keeps_its_columns(tiny_onnx_model, tmp_path: Path) -> None:
    from hc_studio.core.export import RECORD_COLUMNS
    from hc_studio.core.phantom import make_phantom

    frame = tmp_path / "p.png"
    cv2.imwrite(str(frame), np.round(make_phantom(seed=3).image * 255).astype(np.uint8))
    out = tmp_path / "m.csv"
    argv = ["measure", str(frame), "--model", str(tiny_onnx_model), "--pixel-size", "0.14"]
    assert main([*argv, "--out", str(out)]) == 0
    assert tuple(rows_of(out)[0]) == RECORD_COLUMNS
    assert main([*argv, "--out", str(out), "--best-frame", "--sr-out", str(tmp_path / "sr")]) == 0
    row = rows_of(out)[0]
    assert tuple(row) == (*RECORD_COLUMNS, "best_frame") and row["best_frame"] == ""
    assert len(list((tmp_path / "sr").glob("SR_*.dcm"))) == 1


@pytest.mark.slow
def test_best_frame_of_the_readme_sweep_is_an_untouched_one(shipped_model, tmp_path: Path) -> None:
    """The README's cine (a probe sweep, its outer frames shifted, blurred and darker): the
    network is as confident on the blurred ends, the image quality term is not. Before it the
    suggestion was an end frame (10 or 11); the two middle frames are the untouched ones."""
    from hc_studio.core.phantom_dicom import probe_sweep

    sample = resources.files("hc_studio.resources").joinpath("samples", SAMPLE)
    image = cv2.imdecode(np.frombuffer(sample.read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
    clip = write_cine_dicom(tmp_path / "sweep.dcm", probe_sweep(image, 12), 15.0, SAMPLE_MM)
    out = tmp_path / "m.csv"
    argv = ["measure", str(clip), "--model", str(shipped_model), "--device", "cpu"]
    assert main([*argv, "--best-frame", "--out", str(out)]) == 0
    rows = rows_of(out)
    assert [row["status"] for row in rows] == ["ok"] * 12
    marked = [int(row["frame_index"]) for row in rows if row["best_frame"] == "1"]
    assert marked in ([5], [6])
