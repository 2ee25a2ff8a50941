"""The measuring session: every opened frame, its records and decisions, calibration, GA.

Qt-free. The Measure tab shows it and forwards what the person does; the Batch tab shares its
calibration. Observers are plain callables:

- `frame_listeners(key)`: that frame's entry changed (status, record, error);
- `listeners()`: something worth saving changed (the autosave writes the session).

GA by dates is per exam (`datings`, one `ExamDating` per file of the exam): a frame's centile and
z-score come from its own exam's dating. A frame the person moved into another exam takes that
exam's dating (`choices`, with the selected measurements and the calipers placed by hand).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from ..ellipse import Ellipse
from ..exam.correction_log import CorrectionEntry
from ..exam.kept_caliper import KeptCaliper
from ..measure import record_from_ellipse
from ..records import MeasurementRecord
from ..spacing import Spacing
from .calibration import CalibrationState, two_point_spacing
from .commands import FrameUndoStacks, SetRecord
from .datings import ExamDating
from .exam_choices import ExamChoices
from .frames import FrameEntry, FrameKey, FrameState, frame_state
from .records_json import record_from_json, record_to_json

SESSION_FORMAT = "hc-studio-session"
_WINDOW_SOURCES = ("user", "csv", "calibration")  # spacings the window gives, not the file
SESSION_VERSION = 1


@dataclass(frozen=True)
class ListedFile:
    """A file found when opening: its frame count, or why it cannot be read."""

    path: str
    n_frames: int
    error: str | None = None


class Decision(Enum):
    """What became of an accept or reject."""

    DONE = "done"
    NO_FRAME = "no frame"  # nothing on screen or nothing measured
    NOTHING_TO_ACCEPT = "nothing to accept"  # no head, error
    NEEDS_CONFIRMATION = "uncalibrated"  # accepting values in pixels: ask the person first


class MeasureSession:
    """The frames of one review and everything decided about them."""

    def __init__(self) -> None:
        self.entries: dict[FrameKey, FrameEntry] = {}
        self.files: dict[str, ListedFile] = {}  # in the order they were opened
        self._file_spacing: dict[str, Spacing] = {}  # a file's own (DICOM) spacing, once read
        self._exported: dict[FrameKey, MeasurementRecord | None] = {}
        self.accepted_at: dict[FrameKey, dt.datetime] = {}
        self.datings: dict[str, ExamDating] = {}  # per file: its exam's GA by dates
        self.choices = ExamChoices()  # regrouping, selected measurements, calipers by hand
        self.calibration = CalibrationState()
        self.calibration.listeners.append(self._respace)
        self.undo = FrameUndoStacks(self._apply_record)
        self.frame_listeners: list[Callable[[FrameKey], None]] = []
        self.listeners: list[Callable[[], None]] = []

    # Frames ------------------------------------------------------------------------------------
    def frame_keys(self) -> list[FrameKey]:
        return [(f.path, i) for f in self.files.values() for i in range(f.n_frames)]

    def entry(self, key: FrameKey) -> FrameEntry:
        return self.entries.setdefault(key, FrameEntry())

    def record(self, key: FrameKey | None) -> MeasurementRecord | None:
        return self.entry(key).record if key is not None else None

    def n_frames(self, path: str) -> int:
        listed = self.files.get(path)
        return listed.n_frames if listed is not None else 1

    def add_files(self, files: Iterable[ListedFile]) -> list[FrameKey]:
        """Add listed files (those already open are kept as they are); returns the new keys."""
        new: list[FrameKey] = []
        for listed in files:
            if listed.path in self.files:
                continue
            self.files[listed.path] = listed
            for index in range(listed.n_frames):
                key = (listed.path, index)
                new.append(key)
                if listed.error:
                    self.entries[key] = FrameEntry(error=listed.error, read_error=listed.error)
        self._saved_state_changed()
        return new

    def clear(self) -> None:
        """Close every frame (the calibration and GA by dates stay)."""
        self.entries.clear()
        self.files.clear()
        self._file_spacing.clear()
        self._exported.clear()
        self.accepted_at.clear()
        self.choices.clear()
        self.undo.clear()
        self._saved_state_changed()

    def spacing_for(self, key: FrameKey) -> Spacing:
        """The window's choice for the file, else its own spacing, else uncalibrated."""
        override = self.calibration.override(key[0])
        if override is not None:
            return override
        own = self._file_spacing.get(key[0])
        if own is not None:
            return own
        record = self.entry(key).record
        return record.spacing if record is not None else Spacing.uncalibrated()

    # Results from the measuring worker -----------------------------------------------------------
    def frame_read(self, key: FrameKey, own_spacing: Spacing | None) -> None:
        """A frame was read; `own_spacing` is its file's spacing when nothing overrode it."""
        if own_spacing is None or own_spacing.source in _WINDOW_SOURCES:
            return  # read with a choice of the window (perhaps since withdrawn): not the file's
        if self.calibration.override(key[0]) is None:
            self._file_spacing[key[0]] = own_spacing

    def start_measuring(self, key: FrameKey, measure: bool) -> None:
        entry = self.entry(key)
        entry.measuring = measure and entry.record is None
        self._frame_changed(key)

    def measured(self, key: FrameKey, record: MeasurementRecord, prob: np.ndarray | None) -> None:
        entry = self.entry(key)
        record = self._rederive(record, self.spacing_for(key))
        entry.auto, entry.record, entry.prob = record, record, prob
        entry.error, entry.read_error, entry.measuring = None, None, False
        self.undo.clear(key)
        self._frame_changed(key)
        self._saved_state_changed()

    def read_failed(self, key: FrameKey, message: str) -> None:
        entry = self.entry(key)
        entry.error, entry.read_error, entry.measuring = message, message, False
        self._frame_changed(key)

    def measure_failed(self, key: FrameKey, message: str) -> None:
        entry = self.entry(key)
        entry.error, entry.measuring = message, False
        self._frame_changed(key)

    def skipped(self, key: FrameKey) -> None:
        self.entry(key).measuring = False
        self._frame_changed(key)

    def model_changed(self) -> None:
        """A new model: frames neither edited nor decided are measured again."""
        for key, entry in list(self.entries.items()):
            record = entry.record
            if record is not None and (record.origin == "edited" or record.accepted is not None):
                continue
            if entry.read_error is not None:
                continue
            self.entries[key] = FrameEntry()
            self.undo.clear(key)
            self._frame_changed(key)
        self._saved_state_changed()

    # What the person does ------------------------------------------------------------------------
    def edited_record(self, key: FrameKey, ellipse: Ellipse) -> MeasurementRecord | None:
        """The record `ellipse` would give (live values while dragging); it needs a new
        decision: an edit after acceptance is not accepted."""
        base = self.entry(key).record
        if base is None:
            return None
        record = record_from_ellipse(
            key[0],
            key[1],
            self.spacing_for(key),
            ellipse,
            base.model,
            origin="edited",
            base=base,
            ga_weeks=self.ga_weeks_for_frame(key),
        )
        return record.replace(accepted=None)

    def edit(self, key: FrameKey, ellipse: Ellipse) -> None:
        record = self.edited_record(key, ellipse)
        if record is not None:
            self._push(key, "Edit ellipse", record)

    def reset(self, key: FrameKey) -> None:
        auto = self.entry(key).auto
        if auto is not None:
            self._push(key, "Reset to automatic", auto)

    def decide(self, key: FrameKey | None, accepted: bool, confirmed: bool = False) -> Decision:
        """Accept or reject the frame. Accepting a frame without a head is refused; accepting
        values in pixels (no calibration) needs `confirmed`."""
        record = self.record(key)
        if key is None or record is None:
            return Decision.NO_FRAME
        if accepted and frame_state(record) not in (FrameState.OK, FrameState.REVIEW):
            return Decision.NOTHING_TO_ACCEPT
        if accepted and not record.spacing.calibrated and not confirmed:
            return Decision.NEEDS_CONFIRMATION
        self._push(key, "Accept" if accepted else "Reject", record.replace(accepted=accepted))
        if accepted:  # when, for the correction log (an undone acceptance is never read)
            self.accepted_at[key] = dt.datetime.now().astimezone().replace(microsecond=0)
        return Decision.DONE

    def correction_entries(self, accepted_by: str) -> list[CorrectionEntry]:
        """The correction log: each accepted frame's automatic and final values, who accepted
        (`accepted_by`, the operator) and when."""
        entries = []
        for key in self.frame_keys():
            entry = self.entries.get(key)
            if entry is None or entry.record is None or entry.record.accepted is not True:
                continue
            when = self.accepted_at.get(key) or dt.datetime.now().astimezone()
            auto = entry.auto or entry.record
            correction = CorrectionEntry.from_records(auto, entry.record, accepted_by, when)
            kept = self.kept_caliper(key)
            if kept is not None:  # the caliper placed by hand replaces the automatic one
                correction = correction.with_outer_inner(
                    kept.auto_value, kept.value(entry.record.spacing)
                )
            entries.append(correction)
        return entries

    def set_pixel_size(self, mm: float | None, path: str | None = None) -> None:
        """A typed pixel size (mm) for one file, or for every file when `path` is None."""
        if path is None:
            self.calibration.set_for_all_files(mm)
        else:
            self.calibration.set_for_file(path, Spacing.square(mm, "user") if mm else None)

    def load_pixel_csv(self, path: str | Path, for_files: Iterable[str] = ()) -> int:
        """A pixel-size CSV for its own folder tree, the open files and `for_files`."""
        return self.calibration.load_csv(path, [*self.files, *for_files])

    def calibrate(
        self,
        key: FrameKey,
        p1_xy: tuple[float, float],
        p2_xy: tuple[float, float],
        distance_mm: float,
        image_shape: tuple[int, int],
    ) -> Spacing:
        """Two-point calibration of `key`'s file; raises ValueError when the points are not
        both inside the image, coincide, or the distance is not positive."""
        spacing = two_point_spacing(p1_xy, p2_xy, distance_mm, image_shape)
        self.calibration.set_for_file(key[0], spacing)
        return spacing

    def dating_for(self, path: str) -> ExamDating | None:
        """The GA by dates of `path`'s exam, or None when none was entered for it."""
        return self.datings.get(path)

    def ga_weeks_for(self, path: str) -> float | None:
        """GA by dates (weeks) at the exam date of `path`'s exam, or None."""
        dating = self.datings.get(path)
        return None if dating is None else dating.ga_weeks()

    def dating_for_frame(self, key: FrameKey) -> ExamDating | None:
        """GA by dates of the frame's exam: the one it was moved into, else its file's."""
        if key in self.choices.moves:
            return self.choices.moved_datings.get(key)
        return self.datings.get(key[0])

    def ga_weeks_for_frame(self, key: FrameKey) -> float | None:
        dating = self.dating_for_frame(key)
        return None if dating is None else dating.ga_weeks()

    def set_frames_dating(self, keys: Iterable[FrameKey], dating: ExamDating | None) -> None:
        """GA by dates of ONE exam given by its frames: moved frames keep it per frame, the
        others per file (`set_exam_dating`)."""
        keys = list(keys)
        moved = [key for key in keys if key in self.choices.moves]
        changed = [key for key in moved if self.choices.moved_datings.get(key) != dating]
        for key in changed:
            if dating is None:
                self.choices.moved_datings.pop(key, None)
            else:
                self.choices.moved_datings[key] = dating
        self._rederive_frames(changed)
        self.set_exam_dating({key[0] for key in keys if key not in moved}, dating)

    def move_frame(self, key: FrameKey, exam_key: str, dating: ExamDating | None) -> None:
        """The person moved the frame into exam `exam_key` (whose GA by dates is `dating`)."""
        self.choices.moves[key] = exam_key
        if dating is None:
            self.choices.moved_datings.pop(key, None)
        else:
            self.choices.moved_datings[key] = dating
        self._rederive_frames([key])

    def select_measurement(
        self, parameter: str, key: FrameKey | None, exam_frames: Iterable[FrameKey]
    ) -> None:
        """`key`'s value of `parameter` is its exam's value (None: the mean again)."""
        self.choices.select(parameter, key, exam_frames)
        self._saved_state_changed()

    def keep_caliper(self, key: FrameKey, kept: KeptCaliper | None) -> None:
        """A BPD outer-to-inner caliper placed by hand on `key` (None forgets it)."""
        if kept is None:
            self.choices.calipers.pop(key, None)
        else:
            self.choices.calipers[key] = kept
        self._frame_changed(key)
        self._saved_state_changed()

    def kept_caliper(self, key: FrameKey) -> KeptCaliper | None:
        """The caliper placed by hand, while the frame's ellipse is the one it was placed on."""
        kept = self.choices.calipers.get(key)
        return kept if kept is not None and kept.applies_to(self.record(key)) else None

    def kept_calipers(self) -> dict[FrameKey, KeptCaliper]:
        kept = {key: self.kept_caliper(key) for key in self.choices.calipers}
        return {key: value for key, value in kept.items() if value is not None}

    def set_exam_dating(self, paths: Iterable[str], dating: ExamDating | None) -> None:
        """GA by dates of ONE exam (the files `paths`); its frames only are re-derived."""
        paths = {str(p) for p in paths}
        changed = {p for p in paths if self.datings.get(p) != dating}
        if not changed:
            return
        for path in changed:
            if dating is None:
                self.datings.pop(path, None)
            else:
                self.datings[path] = dating
        self._respace(changed)

    # Output ------------------------------------------------------------------------------------
    def accepted_records(self) -> list[MeasurementRecord]:
        records = (self.entries.get(key) for key in self.frame_keys())
        return [e.record for e in records if e and e.record and e.record.accepted is True]

    def mark_exported(self) -> None:
        """The decisions as they are now have been written out."""
        self._exported = {key: entry.record for key, entry in self.entries.items()}
        self._saved_state_changed()

    def unexported_decisions(self) -> int:
        """Frames accepted or rejected (or changed since) that no export has written yet."""
        return sum(
            1
            for key, entry in self.entries.items()
            if entry.record is not None
            and entry.record.accepted is not None
            and self._exported.get(key) != entry.record
        )

    # Internals ---------------------------------------------------------------------------------
    def _push(self, key: FrameKey, text: str, record: MeasurementRecord) -> None:
        before = self.entry(key).record
        if before is None or before == record:
            return
        self.undo.push(SetRecord(text, key, before, record))

    def _apply_record(self, key, record: MeasurementRecord) -> None:
        """Put `record` in place (from an undo command); re-derived if the spacing changed."""
        self.entry(key).record = self._rederive(record, self.spacing_for(key))
        self._frame_changed(key)
        self._saved_state_changed()

    def _rederive(self, record: MeasurementRecord, spacing: Spacing) -> MeasurementRecord:
        """`record` under `spacing` and the GA by dates (values recomputed, status kept). A
        decision taken under another spacing is dropped: its numbers have changed."""
        if record.spacing != spacing and record.accepted is not None:
            record = record.replace(accepted=None)
        if record.ellipse_px is None:
            return record.replace(spacing=spacing) if record.spacing != spacing else record
        new = record_from_ellipse(
            record.file,
            record.frame_index,
            spacing,
            record.ellipse_px,
            record.model,
            origin=record.origin,
            base=record,
            ga_weeks=self.ga_weeks_for_frame((record.file, record.frame_index)),
        )
        return new.replace(status=record.status, reasons=record.reasons)

    def _rederive_frames(self, keys: Iterable[FrameKey]) -> None:
        for key in keys:
            entry = self.entries.get(key)
            if entry is None:
                continue
            for name in ("auto", "record"):
                if getattr(entry, name) is not None:
                    setattr(
                        entry, name, self._rederive(getattr(entry, name), self.spacing_for(key))
                    )
            self._frame_changed(key)
        self._saved_state_changed()

    def _respace(self, paths: set[str] | None) -> None:
        """Recompute every record of `paths` (all files for None) after a spacing change."""
        for key, entry in self.entries.items():
            if paths is not None and key[0] not in paths:
                continue
            spacing = self.spacing_for(key)
            if entry.auto is not None:
                entry.auto = self._rederive(entry.auto, spacing)
            if entry.record is not None:
                entry.record = self._rederive(entry.record, spacing)
            self._frame_changed(key)
        self._saved_state_changed()

    def _frame_changed(self, key: FrameKey) -> None:
        for listener in list(self.frame_listeners):
            listener(key)

    def _saved_state_changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    # Saving ------------------------------------------------------------------------------------
    def to_json(self, with_frames: bool = True) -> dict:
        """Everything worth keeping, as JSON-ready data (no probability maps)."""
        frames = []
        if with_frames:
            for key, entry in self.entries.items():
                if entry.record is None:
                    continue
                frames.append(
                    {
                        "file": key[0],
                        "index": key[1],
                        "auto": record_to_json(entry.auto) if entry.auto else None,
                        "record": record_to_json(entry.record),
                        "exported": self._exported.get(key) == entry.record,
                        "accepted_at": (
                            self.accepted_at[key].isoformat() if key in self.accepted_at else None
                        ),
                    }
                )
        files = list(self.files.values()) if with_frames else []
        return {
            "format": SESSION_FORMAT,
            "version": SESSION_VERSION,
            "files": [{"path": f.path, "n_frames": f.n_frames, "error": f.error} for f in files],
            "frames": frames,
            "calibration": self.calibration.to_json(),
            "exam_datings": {
                path: dating.to_json() for path, dating in sorted(self.datings.items())
            },
            "exam_choices": self.choices.to_json() if with_frames else {},
        }

    def restore(self, data: dict, with_frames: bool = True) -> None:
        """Put back a session saved by `to_json`; the calibration always, the frames when
        `with_frames`. Raises ValueError (or KeyError/TypeError) on data it cannot read; the
        session is then unchanged."""
        if data.get("format") != SESSION_FORMAT or data.get("version") != SESSION_VERSION:
            raise ValueError("not an HC Studio session of this version")
        files = [
            ListedFile(str(f["path"]), max(1, int(f["n_frames"])), f.get("error"))
            for f in data.get("files", [])
        ]
        frames = []
        accepted_at: dict[FrameKey, dt.datetime] = {}
        for item in data.get("frames", []):
            key = (str(item["file"]), int(item["index"]))
            auto = record_from_json(item["auto"]) if item.get("auto") else None
            frames.append((key, auto, record_from_json(item["record"]), bool(item["exported"])))
            if item.get("accepted_at"):
                accepted_at[key] = dt.datetime.fromisoformat(item["accepted_at"])
        # A session saved with one GA by dates for every frame: that value is not restored (it
        # was the bug of applying one patient's dating to all); datings are per exam now.
        datings = {
            str(path): ExamDating.from_json(item)
            for path, item in (data.get("exam_datings") or {}).items()
        }
        choices = ExamChoices.from_json(data.get("exam_choices"))
        calibration = CalibrationState()
        calibration.restore(data.get("calibration", {}))  # checked before anything changes
        self.datings = datings
        self.calibration.restore(data.get("calibration", {}))
        if not with_frames:
            return
        self.clear()
        self.add_files(files)
        self.accepted_at = accepted_at
        self.choices = choices
        for key, auto, record, exported in frames:
            entry = self.entry(key)
            entry.auto, entry.record = auto, record
            if exported:
                self._exported[key] = record
            self._frame_changed(key)
        self._saved_state_changed()
