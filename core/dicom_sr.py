"""DICOM Structured Report of an exam's head biometry: the OB-GYN Ultrasound Procedure Report
(TID 5000), written as a Comprehensive SR with pydicom.

Content tree (PS3.16):

    CONTAINER (125000, DCM, "OB-GYN Ultrasound Procedure Report")       TID 5000
      HAS OBS CONTEXT  observer = device HC Studio (model name)          TID 1001/1002/1004
      CONTAINS CONTAINER (111028, DCM, "Image Library") with the IMAGE of each DICOM source
      CONTAINS CONTAINER (125002, DCM, "Fetal Biometry")                 TID 5005
        CONTAINS CONTAINER (125005, DCM, "Biometry Group")               TID 5008, one per kind
          CONTAINS NUM HC (11984-2, LN) / BPD (11820-8, LN) / OFD (11851-3, LN), mm   TID 300
            INFERRED FROM SCOORD (ellipse for HC, the axis as a line for BPD and OFD)
              SELECTED FROM IMAGE (SOP Class/Instance UID, frame number)  TID 320
          [CONTAINS NUM mean of the measurements, Derivation = Mean]      when several
          CONTAINS NUM (18185-9, LN, "Gestational Age"), days            HC group only
            INFERRED FROM CODE Equation = (11932-1, LN, "HC, Hadlock 1984")

BPD and OFD are outer-to-outer (the fitted ellipse follows the outer skull border). The GA comes
from the HC (the mean when there are several) by Hadlock 1984, only inside its range. The
INTERGROWTH-21st GA, z-score and centile are not written: the coding scheme edition used here
has no code for those equations. Frames that did not come from DICOM are measured without an
image reference. Only calibrated (mm) measurements can be reported.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import atomic_write
from .best_frame import TIER_OK, FrameKey, rank_clips, status_tier
from .dicom_source import UID_ROOT, Exam, SourceImage, group_exams
from .ellipse import Ellipse
from .gestational_age import HADLOCK_HC_RANGE_MM, hadlock_weeks
from .image_quality import ImageQuality
from .records import MeasurementRecord

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
MANUFACTURER = "HC Studio"
# (value, scheme, meaning)
REPORT_TITLE = ("125000", "DCM", "OB-GYN Ultrasound Procedure Report")
HC_CODE = ("11984-2", "LN", "Head Circumference")
BPD_CODE = ("11820-8", "LN", "Biparietal Diameter")
OFD_CODE = ("11851-3", "LN", "Occipital-Frontal Diameter")
GA_CODE = ("18185-9", "LN", "Gestational Age")
HADLOCK_HC_CODE = ("11932-1", "LN", "HC, Hadlock 1984")
_EQUATION = ("121420", "DCM", "Equation")
_DERIVATION = ("121401", "DCM", "Derivation")
_MEAN = ("373098007", "SCT", "Mean")
_MM = ("mm", "UCUM", "mm")
_DAYS = ("d", "UCUM", "day")


class SRExportError(ValueError):
    """An exam that cannot be exported (says which and why)."""


# ---- content items ---------------------------------------------------------------------------


def _code(code: tuple[str, str, str]):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code
    return item


def _item(value_type: str, relationship: str | None, concept: tuple[str, str, str] | None):
    from pydicom.dataset import Dataset

    item = Dataset()
    if relationship:
        item.RelationshipType = relationship
    item.ValueType = value_type
    if concept is not None:
        item.ConceptNameCodeSequence = [_code(concept)]
    return item


def _container(relationship: str | None, concept, children: list, template: str | None = None):
    item = _item("CONTAINER", relationship, concept)
    item.ContinuityOfContent = "SEPARATE"
    if template is not None:
        from pydicom.dataset import Dataset

        reference = Dataset()
        reference.MappingResource, reference.TemplateIdentifier = "DCMR", template
        item.ContentTemplateSequence = [reference]
    item.ContentSequence = children
    return item


def _num(relationship: str, concept, value: float, unit, children: Sequence = ()):
    from pydicom.dataset import Dataset

    item = _item("NUM", relationship, concept)
    measured = Dataset()
    measured.MeasurementUnitsCodeSequence = [_code(unit)]
    measured.NumericValue = f"{value:.3f}"  # the CSV's precision
    measured.FloatingPointValue = float(value)
    item.MeasuredValueSequence = [measured]
    if children:
        item.ContentSequence = list(children)
    return item


def _text_item(relationship: str, concept, text: str):
    item = _item("TEXT", relationship, concept)
    item.TextValue = text[:1024]
    return item


def _image_item(relationship: str, image: SourceImage):
    from pydicom.dataset import Dataset

    item = _item("IMAGE", relationship, None)
    reference = Dataset()
    reference.ReferencedSOPClassUID = image.sop_class_uid
    reference.ReferencedSOPInstanceUID = image.sop_instance_uid
    if image.frame_number is not None:
        reference.ReferencedFrameNumber = image.frame_number
    item.ReferencedSOPSequence = [reference]
    return item


def _scoord(graphic_type: str, points: list[tuple[float, float]], image: SourceImage):
    item = _item("SCOORD", "INFERRED FROM", None)
    item.GraphicType = graphic_type
    # SCOORD origin is the top-left CORNER of the first pixel; ours is its centre.
    item.GraphicData = [float(v) + 0.5 for point in points for v in point]
    item.ContentSequence = [_image_item("SELECTED FROM", image)]
    return item


def _axis_points(ellipse: Ellipse) -> tuple[list, list]:
    """(major axis end points, minor axis end points) in pixel (x, y)."""
    cos, sin = math.cos(ellipse.angle), math.sin(ellipse.angle)
    major = [
        (ellipse.cx - ellipse.a * cos, ellipse.cy - ellipse.a * sin),
        (ellipse.cx + ellipse.a * cos, ellipse.cy + ellipse.a * sin),
    ]
    minor = [
        (ellipse.cx + ellipse.b * sin, ellipse.cy - ellipse.b * cos),
        (ellipse.cx - ellipse.b * sin, ellipse.cy + ellipse.b * cos),
    ]
    return major, minor


def _measurement(kind: tuple[str, str, str], record: MeasurementRecord, image):
    value = {HC_CODE: record.hc, BPD_CODE: record.bpd, OFD_CODE: record.ofd}[kind]
    children = []
    if image is not None and record.ellipse_px is not None:
        major, minor = _axis_points(record.ellipse_px)
        if kind == HC_CODE:
            children.append(_scoord("ELLIPSE", major + minor, image))
        else:
            children.append(_scoord("POLYLINE", minor if kind == BPD_CODE else major, image))
    return _num("CONTAINS", kind, float(value), _MM, children)


def _gestational_age(hc_mm: float):
    low, high = HADLOCK_HC_RANGE_MM
    if not low <= hc_mm <= high:
        return None
    equation = _item("CODE", "INFERRED FROM", _EQUATION)
    equation.ConceptCodeSequence = [_code(HADLOCK_HC_CODE)]
    return _num("CONTAINS", GA_CODE, hadlock_weeks(hc_mm) * 7.0, _DAYS, [equation])


def _biometry_group(kind, records: list[MeasurementRecord], exam: Exam):
    children = [_measurement(kind, r, exam.image_of(r)) for r in records]
    values = [{HC_CODE: r.hc, BPD_CODE: r.bpd, OFD_CODE: r.ofd}[kind] for r in records]
    value = sum(values) / len(values)  # type: ignore[arg-type]
    if len(records) > 1:
        derivation = _item("CODE", "HAS CONCEPT MOD", _DERIVATION)
        derivation.ConceptCodeSequence = [_code(_MEAN)]
        children.append(_num("CONTAINS", kind, value, _MM, [derivation]))
    if kind == HC_CODE:
        ga = _gestational_age(value)
        if ga is not None:
            children.append(ga)
    return _container("CONTAINS", ("125005", "DCM", "Biometry Group"), children)


def _observer_context(models: list[str]) -> list:
    from pydicom.uid import generate_uid

    observer = _item("CODE", "HAS OBS CONTEXT", ("121005", "DCM", "Observer Type"))
    observer.ConceptCodeSequence = [_code(("121007", "DCM", "Device"))]
    uid = _item("UIDREF", "HAS OBS CONTEXT", ("121012", "DCM", "Device Observer UID"))
    uid.UID = generate_uid(UID_ROOT, entropy_srcs=["hc-studio device", *models])
    name = ("121013", "DCM", "Device Observer Name")
    manufacturer = ("121014", "DCM", "Device Observer Manufacturer")
    items = [observer, uid, _text_item("HAS OBS CONTEXT", name, MANUFACTURER)]
    items.append(_text_item("HAS OBS CONTEXT", manufacturer, MANUFACTURER))
    if models:
        model = ("121015", "DCM", "Device Observer Model Name")
        items.append(_text_item("HAS OBS CONTEXT", model, ", ".join(models)))
    return items


# ---- which records -----------------------------------------------------------------------------


def reportable(record: MeasurementRecord) -> bool:
    """A record with a head, in mm, and HC, BPD and OFD."""
    return (
        record.ellipse_px is not None
        and record.unit == "mm"
        and all(v is not None for v in (record.hc, record.bpd, record.ofd))
    )


def accepted_records(records: Iterable[MeasurementRecord]) -> list[MeasurementRecord]:
    """What the app exports: records a person accepted (and that can be reported)."""
    return [r for r in records if r.accepted is True and reportable(r)]


def unflagged_records(
    records: Iterable[MeasurementRecord], quality: Mapping[FrameKey, ImageQuality] | None = None
) -> list[MeasurementRecord]:
    """What the CLI exports (it has no acceptance): measurements reported without a flag
    (status "ok"), in mm; of a clip, only its best frame (`core.best_frame`, weighing the
    frames' image `quality` where given, as the best_frame column does)."""
    records = list(records)
    rankings = rank_clips(records, quality=quality)
    best = {file: ranking.best_index for file, ranking in rankings.items()}
    return [
        r
        for r in records
        if status_tier(r) == TIER_OK
        and reportable(r)
        and (r.file not in best or best[r.file] == r.frame_index)
    ]


# ---- the document ---------------------------------------------------------------------------


def _check_one_patient(exam: Exam) -> None:
    patients = {s.identity.patient_id for s in exam.sources.values()}
    if len(patients) > 1:
        raise SRExportError(
            f"study {exam.label}: its files name {len(patients)} different patient IDs "
            f"({', '.join(sorted(patients))}); no report written"
        )


def build_sr(exam: Exam, now: datetime.datetime | None = None):
    """The SR document (a pydicom FileDataset-ready Dataset) of one exam's records.

    Raises SRExportError when the exam has nothing reportable or mixes patients.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    records = [r for r in exam.records if reportable(r)]
    if not records:
        raise SRExportError(f"exam {exam.label}: no calibrated measurement to report")
    _check_one_patient(exam)
    now = now or datetime.datetime.now()
    identity = exam.identity
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = COMPREHENSIVE_SR
    ds.SOPInstanceUID = generate_uid(UID_ROOT)
    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = identity.patient_birth_date
    ds.PatientSex = identity.patient_sex
    ds.StudyInstanceUID = identity.study_instance_uid
    ds.StudyDate = identity.study_date
    ds.StudyTime = identity.study_time
    ds.ReferringPhysicianName = identity.referring_physician_name
    ds.StudyID = identity.study_id
    ds.AccessionNumber = identity.accession_number
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid(UID_ROOT)
    ds.SeriesNumber = 9901
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.Manufacturer = MANUFACTURER
    ds.InstanceNumber = 1
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.PerformedProcedureCodeSequence = []
    images = _images(exam, records)
    if images:
        ds.CurrentRequestedProcedureEvidenceSequence = _evidence(identity, images)
    models = sorted({r.model for r in records if r.model})
    children = _observer_context(models)
    if images:
        library = [_image_item("CONTAINS", image) for image in _unique_instances(images)]
        children.append(_container("CONTAINS", ("111028", "DCM", "Image Library"), library))
    groups = [_biometry_group(kind, records, exam) for kind in (HC_CODE, BPD_CODE, OFD_CODE)]
    children.append(_container("CONTAINS", ("125002", "DCM", "Fetal Biometry"), groups))
    root = _container(None, REPORT_TITLE, children, template="5000")
    for keyword in ("ValueType", "ConceptNameCodeSequence", "ContinuityOfContent"):
        setattr(ds, keyword, root[keyword].value)
    ds.ContentTemplateSequence = root.ContentTemplateSequence
    ds.ContentSequence = root.ContentSequence
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def _images(exam: Exam, records: list[MeasurementRecord]) -> list[SourceImage]:
    return [image for r in records if (image := exam.image_of(r)) is not None]


def _unique_instances(images: list[SourceImage]) -> list[SourceImage]:
    """One entry per SOP instance (a cine is listed once, without a frame number)."""
    seen: dict[str, SourceImage] = {}
    for image in images:
        seen.setdefault(
            image.sop_instance_uid,
            SourceImage(image.sop_class_uid, image.sop_instance_uid, image.series_instance_uid),
        )
    return list(seen.values())


def _evidence(identity, images: list[SourceImage]) -> list:
    from pydicom.dataset import Dataset

    series: dict[str, dict[str, str]] = {}
    for image in images:
        series.setdefault(image.series_instance_uid, {})[image.sop_instance_uid] = (
            image.sop_class_uid
        )
    study = Dataset()
    study.StudyInstanceUID = identity.study_instance_uid
    study.ReferencedSeriesSequence = []
    for series_uid, instances in series.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.ReferencedSOPSequence = []
        for instance_uid, class_uid in instances.items():
            reference = Dataset()
            reference.ReferencedSOPClassUID = class_uid
            reference.ReferencedSOPInstanceUID = instance_uid
            item.ReferencedSOPSequence.append(reference)
        study.ReferencedSeriesSequence.append(item)
    return [study]


def sr_file_name(exam: Exam) -> str:
    """`SR_<StudyInstanceUID>.dcm`; for a folder of non-DICOM frames `SR_<folder>_<UID>.dcm`."""
    if exam.identity.from_dicom:
        return f"SR_{exam.identity.study_instance_uid}.dcm"
    folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", exam.label).strip("._") or "frames"
    return f"SR_{folder}_{exam.identity.study_instance_uid}.dcm"


def write_sr(dataset, path: str | Path) -> Path:
    """Write an SR dataset atomically (a failed write leaves any earlier file as it was)."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        dataset.save_as(handle, enforce_file_format=True)
    return path


@dataclass
class SRExport:
    """What `write_exam_srs` did: files written, notes (sources referenced as non-DICOM), and
    exams not written (each with why)."""

    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def write_exam_srs(records: Iterable[MeasurementRecord], folder: str | Path) -> SRExport:
    """One SR per exam of `records` into `folder`. An exam that cannot be written is reported
    in `failed` and the others go on."""
    result = SRExport()
    for exam in group_exams(records):
        result.notes.extend(exam.notes)
        path = Path(folder) / sr_file_name(exam)
        try:
            result.written.append(write_sr(build_sr(exam), path))
        except SRExportError as error:
            result.failed.append(str(error))
        except OSError as error:
            result.failed.append(f"{path}: not written ({error.strerror or error})")
    return result


def read_sr_values(path_or_dataset) -> dict[str, list[float]]:
    """Read an SR back: concept meaning -> numeric values, in tree order (e.g. "Head
    Circumference": [...], "Gestational Age": [days]). For checks and round trips."""
    import pydicom

    dataset = path_or_dataset
    if isinstance(dataset, str | Path):
        dataset = pydicom.dcmread(dataset)
    values: dict[str, list[float]] = {}

    def walk(items) -> None:
        for item in items:
            if item.ValueType == "NUM":
                name = item.ConceptNameCodeSequence[0].CodeMeaning
                values.setdefault(name, []).append(
                    float(item.MeasuredValueSequence[0].NumericValue)
                )
            walk(item.get("ContentSequence", []))

    walk(dataset.ContentSequence)
    return values
