"""Undo/redo of measurement changes: every change swaps one frame's record for another.

Each frame has its own QUndoStack in one QUndoGroup, so Ctrl+Z undoes the last change of the
frame on screen (what a sonographer expects), never an edit made on another frame.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from ..core.records import MeasurementRecord

ApplyRecord = Callable[[Hashable, MeasurementRecord], None]


class SetRecordCommand(QUndoCommand):
    """Replace the record of frame `key`: `apply(key, record)` puts a record in place."""

    def __init__(
        self,
        text: str,
        key: Hashable,
        before: MeasurementRecord,
        after: MeasurementRecord,
        apply: ApplyRecord,
    ) -> None:
        super().__init__(text)
        self.key = key
        self.before = before
        self.after = after
        self._apply = apply

    def redo(self) -> None:
        self._apply(self.key, self.after)

    def undo(self) -> None:
        self._apply(self.key, self.before)


class FrameUndoStacks(QObject):
    """One undo stack per frame key, grouped so the active frame's stack drives Undo/Redo."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.group = QUndoGroup(self)
        self._stacks: dict[Hashable, QUndoStack] = {}

    def stack(self, key: Hashable) -> QUndoStack:
        if key not in self._stacks:
            stack = QUndoStack(self.group)
            self._stacks[key] = stack
        return self._stacks[key]

    def activate(self, key: Hashable | None) -> None:
        self.group.setActiveStack(self.stack(key) if key is not None else None)

    def push(self, command: SetRecordCommand) -> None:
        """Run `command` (redo) and keep it on its frame's stack."""
        self.stack(command.key).push(command)

    def clear(self) -> None:
        for stack in self._stacks.values():
            self.group.removeStack(stack)
            stack.deleteLater()
        self._stacks.clear()
