"""Keys that belong to the field being typed in, not to window-wide shortcuts.

The Measure tab accepts a frame on Return/Enter and "A", and the cine bar plays on Space: a
person typing a date or a GA must never trigger either.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
)

_TEXT_INPUTS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)
_ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


def text_field_has_focus() -> bool:
    """True when the focused widget takes typed text (a line edit, spin box, editable combo)."""
    widget = QApplication.focusWidget()
    if widget is None:
        return False
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    return isinstance(widget, _TEXT_INPUTS)


class EnterApplies(QObject):
    """An event filter that keeps Return/Enter in the watched fields and calls `apply`.

    Qt offers a key to the focused widget as a ShortcutOverride before matching shortcuts;
    accepting it here means no window shortcut fires, and the key press that follows calls
    `apply` instead.
    """

    def __init__(self, apply: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self._apply = apply

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        if event.key() not in _ENTER_KEYS:  # type: ignore[attr-defined]
            return False
        event.accept()
        if kind == QEvent.Type.KeyPress:
            self._apply()
        return True
