"""DICOM SR export: TID 5000 content, identifiers, image references, exams, validation."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hc_studio.core.dicom_source import folder_study_uid, group_exams
from hc_studio.core.dicom_sr import (
    COMPREHENSIVE_SR,
    accepted_records,
    build_sr,
    read_sr_values,
    unflagged_records,
    write_exam_srs,
)
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.gestational_age import hadlock_weeks
from hc_studio.core.measure import record_from_ellipse
from hc_studio.core.phantom_dicom import write_cine_dicom
from hc_studio.core.records import parse_status_text
from hc_studio.core.spacing import Spacing
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

SPACING = Spacing.square(0.15, "dicom-pixel-spacing")


def write_source(path: Path, n_frames: int = 3, study_uid: str | None = None, **ids) -> Dataset:
    """A small multi-frame ultrasound DICOM with patient and study identifiers."""
    identifiers = {"PatientID": "P-0042", "PatientName": "Doe^Jane", "AccessionNumber": "ACC-7"}
    frames = np.zeros((n_frames, 64, 64), np.uint8)
    date = dt.date(2026, 3, 15)
    write_cine_dicom(path, frames, 25.0, None, study_uid, date, {**identifiers, **ids})
    return pydicom.dcmread(path)


def measured(file, index, a=400.0, b=320.0, status="ok", spacing=SPACING, accepted=None):
    ellipse = Ellipse.normalised(300.0, 250.0, a, b, 0.4)
    record = record_from_ellipse(str(file), index, spacing, ellipse, "hc-model", origin="auto")
    status, reasons = parse_status_text(status)
    return record.replace(
        status=status, reasons=reasons, confidence=0.95, fit_iou=0.97, accepted=accepted
    )


def test_sr_of_a_dicom_frame_carries_ids_values_ga_and_its_image(tmp_path: Path) -> None:
    source = write_source(tmp_path / "clip.dcm")
    record = measured(tmp_path / "clip.dcm", 1)
    result = write_exam_srs([record], tmp_path / "sr")
    assert result.failed == [] and len(result.written) == 1
    path = result.written[0]
    assert path.name == f"SR_{source.StudyInstanceUID}.dcm"
    sr = pydicom.dcmread(path)
    assert sr.SOPClassUID == COMPREHENSIVE_SR and sr.Modality == "SR"
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "AccessionNumber"):
        assert str(sr[keyword].value) == str(source[keyword].value)
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "5000"
    assert sr.ConceptNameCodeSequence[0].CodeValue == "125000"
    values = read_sr_values(sr)
    assert values["Head Circumference"] == [pytest.approx(record.hc, abs=1e-3)]
    assert values["Biparietal Diameter"] == [pytest.approx(record.bpd, abs=1e-3)]
    assert values["Occipital-Frontal Diameter"] == [pytest.approx(record.ofd, abs=1e-3)]
    assert values["Gestational Age"] == [pytest.approx(hadlock_weeks(record.hc) * 7, abs=1e-3)]
    biometry = sr.ContentSequence[-1]
    hc_group, bpd_group, _ = biometry.ContentSequence
    hc_item = hc_group.ContentSequence[0]
    assert hc_item.ConceptNameCodeSequence[0].CodeValue == "11984-2"
    assert bpd_group.ContentSequence[0].ConceptNameCodeSequence[0].CodeValue == "11820-8"
    scoord = hc_item.ContentSequence[0]
    assert scoord.GraphicType == "ELLIPSE" and len(scoord.GraphicData) == 8
    centre = np.mean(np.reshape(scoord.GraphicData, (4, 2)), axis=0)
    np.testing.assert_allclose(centre, [300.5, 250.5], atol=1e-3)  # SCOORD: corner origin
    image = scoord.ContentSequence[0].ReferencedSOPSequence[0]
    assert image.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert image.ReferencedSOPClassUID == source.SOPClassUID
    assert image.ReferencedFrameNumber == 2  # frame index 1, numbered from 1
    ga = hc_group.ContentSequence[-1]
    assert ga.ContentSequence[0].ConceptCodeSequence[0].CodeMeaning == "HC, Hadlock 1984"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID


def test_several_measurements_get_a_mean_and_out_of_range_hc_no_ga(tmp_path: Path) -> None:
    write_source(tmp_path / "a.dcm")
    records = [measured(tmp_path / "a.dcm", 0, a=60, b=50), measured(tmp_path / "a.dcm", 2, 70, 50)]
    sr = build_sr(group_exams(records)[0])
    hcs = read_sr_values(sr)["Head Circumference"]
    assert len(hcs) == 3 and hcs[2] == pytest.approx((records[0].hc + records[1].hc) / 2, abs=1e-3)
    assert records[0].hc < 68  # below Hadlock's range: no GA is written
    assert "Gestational Age" not in read_sr_values(sr)


def test_non_dicom_frames_get_a_folder_study_and_no_patient(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    result = write_exam_srs([measured(folder / "a.png", 0), measured(folder / "b.png", 0)], folder)
    (path,) = result.written
    sr = pydicom.dcmread(path)
    assert sr.StudyInstanceUID == folder_study_uid(folder.resolve())
    assert path.name == f"SR_scans_{sr.StudyInstanceUID}.dcm"
    assert sr.PatientID == "" and str(sr.PatientName) == ""
    assert "CurrentRequestedProcedureEvidenceSequence" not in sr
    assert len(read_sr_values(sr)["Head Circumference"]) == 3  # two and their mean


def test_one_sr_per_study_and_a_study_mixing_patients_is_refused(tmp_path: Path) -> None:
    study = generate_uid()
    write_source(tmp_path / "x1.dcm", study_uid=study, PatientID="A")
    write_source(tmp_path / "x2.dcm", study_uid=study, PatientID="B")
    write_source(tmp_path / "y.dcm")
    records = [measured(tmp_path / n, 0) for n in ("x1.dcm", "x2.dcm", "y.dcm")]
    result = write_exam_srs(records, tmp_path / "out")
    assert len(result.written) == 1 and len(result.failed) == 1
    assert "different patient IDs" in result.failed[0] and study in result.failed[0]


def test_which_records_are_reported(tmp_path: Path) -> None:
    clip = tmp_path / "clip.dcm"
    good = [measured(clip, i, a=400 + 40 * (i == 2)) for i in range(3)]
    flagged = measured(tmp_path / "s.dcm", 0, status="review: fit IoU 0.80")
    pixels = measured(tmp_path / "p.png", 0, spacing=Spacing.uncalibrated())
    chosen = unflagged_records([*good, flagged, pixels])
    # Of the clip, only its best frame: 1, steady with frame 0 (frame 2 jumps).
    assert [(r.file, r.frame_index) for r in chosen] == [(str(clip), 1)]
    accepted = [measured(clip, 0, accepted=True), measured(clip, 1, accepted=False)]
    assert accepted_records([*accepted, flagged]) == accepted[:1]
    with pytest.raises(ValueError, match="no calibrated measurement"):
        build_sr(group_exams([pixels])[0])


def test_a_failed_write_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    result = write_exam_srs([measured(tmp_path / "a.png", 0)], blocker)
    assert result.written == [] and "not written" in result.failed[0]
    assert blocker.read_text() == "x"


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) absent")
def test_dciodvfy_finds_no_error(tmp_path: Path) -> None:
    write_source(tmp_path / "clip.dcm")
    folder = tmp_path / "frames"
    folder.mkdir()
    records = [measured(tmp_path / "clip.dcm", 0), measured(folder / "f.png", 0)]
    result = write_exam_srs(records, tmp_path / "sr")
    assert len(result.written) == 2
    for path in result.written:
        check = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        output = check.stdout + check.stderr
        assert "ComprehensiveSR" in output
        assert not [line for line in output.splitlines() if line.startswith("Error")], output


def test_a_dicom_without_uids_is_reported_as_a_non_dicom_frame(tmp_path: Path) -> None:
    source = write_source(tmp_path / "bare.dcm")
    del source.SeriesInstanceUID
    source.save_as(tmp_path / "bare.dcm", enforce_file_format=True)
    result = write_exam_srs([measured(tmp_path / "bare.dcm", 0)], tmp_path / "sr")
    assert len(result.written) == 1
    assert result.notes == [
        f"{tmp_path / 'bare.dcm'}: no SeriesInstanceUID; exported as a non-DICOM frame"
    ]
    sr = pydicom.dcmread(result.written[0])
    assert sr.PatientID == "" and "CurrentRequestedProcedureEvidenceSequence" not in sr
