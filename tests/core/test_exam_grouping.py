"""Frames grouped into exams: DICOM by study (identifiers kept inside), others by folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hc_studio.core.biometry import HeadBiometry
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.exam import group_into_exams, read_study_header
from hc_studio.core.records import MeasurementRecord
from hc_studio.core.spacing import Spacing
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid


def record(path: Path, index: int = 0, hc: float = 170.0) -> MeasurementRecord:
    return MeasurementRecord(
        file=str(path),
        frame_index=index,
        spacing=Spacing.square(0.14, "csv"),
        ellipse_px=Ellipse(100, 100, 80, 60, 0.0),
        biometry=HeadBiometry(hc, hc / 3.6, hc / 2.9, 0.0, "mm"),
    )


def write_dicom_header(path: Path, study_uid: str, patient: str, study_date: str) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.StudyInstanceUID = study_uid
    ds.PatientName, ds.PatientID, ds.StudyDate = patient, f"ID-{patient}", study_date
    ds.Rows, ds.Columns = 8, 8
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_by_study_across_folders_and_pngs_by_folder(tmp_path: Path) -> None:
    uid_a, uid_b = generate_uid(), generate_uid()
    a1 = write_dicom_header(tmp_path / "day1" / "a1.dcm", uid_a, "Doe^Jane", "20250314")
    b1 = write_dicom_header(tmp_path / "day1" / "b1.dcm", uid_b, "Roe^Mary", "20250315")
    a2 = write_dicom_header(tmp_path / "day2" / "a2", uid_a, "Doe^Jane", "20250314")  # no suffix
    png_x = tmp_path / "patient_x" / "1.png"
    png_y = tmp_path / "patient_y" / "1.png"
    records = [record(a1), record(b1), record(png_x), record(a2), record(png_y)]

    book = group_into_exams(records)

    assert [exam.label for exam in book] == ["Study 1", "Study 2", "patient_x", "patient_y"]
    study_a = book.exam("study-1")
    assert [Path(r.file).name for r in study_a.records] == ["a1.dcm", "a2"]
    assert study_a.exam_date == dt.date(2025, 3, 14)
    assert study_a.identifiers["PatientName"] == "Doe^Jane"
    assert study_a.identifiers["StudyInstanceUID"] == uid_a
    # identifiers live only in `identifiers`: not in the key, label or repr
    for exam in book:
        shown = f"{exam.key} {exam.label} {exam!r}"
        assert "Doe" not in shown and "Roe" not in shown and uid_a not in shown


def test_unreadable_or_uidless_dicom_falls_back_to_folder(tmp_path: Path) -> None:
    broken = tmp_path / "f" / "broken.dcm"
    broken.parent.mkdir()
    broken.write_bytes(b"not dicom at all")
    assert read_study_header(broken) is None
    assert read_study_header(tmp_path / "f" / "missing.dcm") is None
    book = group_into_exams([record(broken)])
    assert [exam.kind for exam in book] == ["folder"]


def test_regrouping_moves_a_frame_and_updates_records(tmp_path: Path) -> None:
    first, second = tmp_path / "p1" / "1.png", tmp_path / "p2" / "1.png"
    book = group_into_exams([record(first, 0), record(first, 1), record(second, 0)])
    new = book.new_exam("twin B")
    book.move_frame((str(first), 1), new.key)
    assert book.exam_of((str(first), 1)) is new
    assert book.exam("folder-1").frame_keys() == [(str(first), 0)]

    book.update_record(record(first, 1, hc=200.0))
    assert new.records[0].hc == 200.0

    book.move_frame((str(second), 0), "folder-1")
    book.drop_empty()
    assert [exam.key for exam in book] == ["folder-1", new.key]
    with pytest.raises(KeyError, match="no exam"):
        book.move_frame((str(first), 0), "nope")


def test_a_linked_folder_keeps_the_name_the_user_opened(tmp_path: Path) -> None:
    real = tmp_path / "store"
    real.mkdir()
    (tmp_path / "patient_z").symlink_to(real, target_is_directory=True)
    (exam,) = group_into_exams([record(tmp_path / "patient_z" / "1.png")])
    assert exam.label == "patient_z"


def test_exam_csv_holds_identifiers_only_when_asked(tmp_path: Path) -> None:
    from hc_studio.core.exam.exam_csv import write_exam_csv

    uid = generate_uid()
    dicom = write_dicom_header(tmp_path / "s" / "a.dcm", uid, "Doe^Jane", "20250314")
    book = group_into_exams([record(dicom), record(tmp_path / "=cmd" / "1.png")])
    plain, full = tmp_path / "exams.csv", tmp_path / "exams_with_ids.csv"

    assert write_exam_csv(book, plain) == 2
    write_exam_csv(book, full, include_identifiers=True)

    text = plain.read_text()
    assert "Doe" not in text and uid not in text and "ID-Doe" not in text
    assert "study-1,Study 1,dicom-study,2025-03-14" in text
    assert ",'=cmd," in text  # a folder named like a formula is neutralised
    assert "Doe^Jane" in full.read_text() and uid in full.read_text()
