"""Undo/redo of measurement changes, without Qt: every change swaps one frame's record.

Each frame has its own stack and the frame on screen is the active one, so Ctrl+Z undoes the last
change of that frame (what a sonographer expects), never an edit made on another frame.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from ..records import MeasurementRecord

ApplyRecord = Callable[[Hashable, MeasurementRecord], None]


@dataclass(frozen=True)
class SetRecord:
    """Replace the record of frame `key`: `before` on undo, `after` on redo."""

    text: str
    key: Hashable
    before: MeasurementRecord
    after: MeasurementRecord


class UndoStack:
    """Commands of one frame; `index` commands are done, the rest can be redone."""

    def __init__(self) -> None:
        self.commands: list[SetRecord] = []
        self.index = 0

    def push(self, command: SetRecord) -> None:
        del self.commands[self.index :]
        self.commands.append(command)
        self.index = len(self.commands)

    def can_undo(self) -> bool:
        return self.index > 0

    def can_redo(self) -> bool:
        return self.index < len(self.commands)

    def undo_text(self) -> str:
        return self.commands[self.index - 1].text if self.can_undo() else ""

    def redo_text(self) -> str:
        return self.commands[self.index].text if self.can_redo() else ""


class FrameUndoStacks:
    """One stack per frame key; `apply(key, record)` puts a record in place.

    `listeners` are called (with no argument) whenever what Undo/Redo would do changes.
    """

    def __init__(self, apply: ApplyRecord) -> None:
        self._apply = apply
        self._stacks: dict[Hashable, UndoStack] = {}
        self.active: Hashable | None = None
        self.listeners: list[Callable[[], None]] = []

    def stack(self, key: Hashable) -> UndoStack:
        return self._stacks.setdefault(key, UndoStack())

    def activate(self, key: Hashable | None) -> None:
        self.active = key
        self._changed()

    def push(self, command: SetRecord) -> None:
        """Do `command` and keep it on its frame's stack."""
        self.stack(command.key).push(command)
        self._apply(command.key, command.after)
        self._changed()

    def undo(self) -> SetRecord | None:
        stack = self._active_stack()
        if stack is None or not stack.can_undo():
            return None
        stack.index -= 1
        command = stack.commands[stack.index]
        self._apply(command.key, command.before)
        self._changed()
        return command

    def redo(self) -> SetRecord | None:
        stack = self._active_stack()
        if stack is None or not stack.can_redo():
            return None
        command = stack.commands[stack.index]
        stack.index += 1
        self._apply(command.key, command.after)
        self._changed()
        return command

    def can_undo(self) -> bool:
        stack = self._active_stack()
        return stack is not None and stack.can_undo()

    def can_redo(self) -> bool:
        stack = self._active_stack()
        return stack is not None and stack.can_redo()

    def undo_text(self) -> str:
        stack = self._active_stack()
        return stack.undo_text() if stack is not None else ""

    def redo_text(self) -> str:
        stack = self._active_stack()
        return stack.redo_text() if stack is not None else ""

    def clear(self, key: Hashable | None = None) -> None:
        """Forget the history of `key` (every frame for None)."""
        if key is None:
            self._stacks.clear()
        else:
            self._stacks.pop(key, None)
        self._changed()

    def _active_stack(self) -> UndoStack | None:
        return self._stacks.get(self.active) if self.active is not None else None

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener()
