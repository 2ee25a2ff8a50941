"""What the person decided about exams beyond GA by dates, as the session keeps it.

- **Moves** (regrouping): a frame moved into another exam, or into a new one, keeps that place
  (`moves`: frame -> exam key) and takes that exam's GA by dates (`moved_datings`, per frame: a
  moved frame never falls back on the dating of its own file, which is another exam's).
- **Selections**: the one measurement the person chose as an exam's value of a parameter instead
  of the mean (`selections`: parameter -> frames, the latest last; an exam's selection is its
  latest frame there).
- **Kept calipers**: a BPD outer-to-inner caliper placed by hand (`calipers`: frame ->
  `KeptCaliper`).

All of it is saved with the session (`to_json` / `from_json`) and is keyed by frame, so it needs
no exam identifier on disk and survives regrouping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..exam.kept_caliper import KeptCaliper
from .datings import ExamDating
from .frames import FrameKey

USER_EXAM_PREFIX = "exam-"


def _key_json(key: FrameKey) -> list:
    return [key[0], key[1]]


def _key_from(data) -> FrameKey:
    path, index = data
    return str(path), int(index)


@dataclass
class ExamChoices:
    moves: dict[FrameKey, str] = field(default_factory=dict)
    moved_datings: dict[FrameKey, ExamDating] = field(default_factory=dict)
    selections: dict[str, list[FrameKey]] = field(default_factory=dict)
    calipers: dict[FrameKey, KeptCaliper] = field(default_factory=dict)

    def new_exam_key(self, taken: Iterable[str] = ()) -> str:
        """A key for a new exam made by the person: exam-N, N above every one in use."""
        numbers = [
            int(match.group(1))
            for key in [*self.moves.values(), *taken]
            if (match := re.fullmatch(rf"{USER_EXAM_PREFIX}(\d+)", key))
        ]
        return f"{USER_EXAM_PREFIX}{max(numbers, default=0) + 1}"

    def select(self, parameter: str, key: FrameKey | None, exam_frames: Iterable[FrameKey]):
        """`key` becomes the selected measurement of `parameter` in the exam of `exam_frames`
        (None: back to the mean)."""
        exam_frames = set(exam_frames)
        frames = [k for k in self.selections.get(parameter, []) if k not in exam_frames]
        if key is not None:
            frames.append(key)
        if frames:
            self.selections[parameter] = frames
        else:
            self.selections.pop(parameter, None)

    def selected_in(self, exam_frames: Iterable[FrameKey]) -> dict[str, FrameKey]:
        """{parameter: the frame selected in the exam of `exam_frames`}."""
        exam_frames = set(exam_frames)
        selected = {}
        for parameter, frames in self.selections.items():
            mine = [key for key in frames if key in exam_frames]
            if mine:
                selected[parameter] = mine[-1]
        return selected

    def clear(self) -> None:
        self.moves.clear()
        self.moved_datings.clear()
        self.selections.clear()
        self.calipers.clear()

    def to_json(self) -> dict:
        return {
            "moves": [[*_key_json(key), exam] for key, exam in self.moves.items()],
            "moved_datings": [
                [*_key_json(key), dating.to_json()] for key, dating in self.moved_datings.items()
            ],
            "selections": {
                parameter: [_key_json(key) for key in frames]
                for parameter, frames in self.selections.items()
            },
            "calipers": [[*_key_json(key), kept.to_json()] for key, kept in self.calipers.items()],
        }

    @classmethod
    def from_json(cls, data: dict | None) -> ExamChoices:
        """Raises ValueError (or KeyError/TypeError) on data it cannot read."""
        data = data or {}
        return cls(
            moves={_key_from(item[:2]): str(item[2]) for item in data.get("moves", [])},
            moved_datings={
                _key_from(item[:2]): ExamDating.from_json(item[2])
                for item in data.get("moved_datings", [])
            },
            selections={
                str(parameter): [_key_from(key) for key in frames]
                for parameter, frames in (data.get("selections") or {}).items()
            },
            calipers={
                _key_from(item[:2]): KeptCaliper.from_json(item[2])
                for item in data.get("calipers", [])
            },
        )
