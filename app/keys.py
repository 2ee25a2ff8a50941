"""Keys typed into a text field belong to it: single-key shortcuts (A, R, Enter, Space, arrows...)
act only when no text field has the focus, and Enter in an input panel applies that panel.

Qt asks the focused widget first with a ShortcutOverride event; accepting it for a text field
sends the key to the field instead of triggering the window's shortcut. Shortcuts with Ctrl, Alt
or Meta keep working everywhere (Ctrl+Z in a field is the field's own undo, which Qt handles).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

_COMMAND_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier
    | Qt.KeyboardModifier.AltModifier
    | Qt.KeyboardModifier.MetaModifier
)


def is_text_field(widget: QWidget | None) -> bool:
    """A widget where typing enters text (line edits, spin boxes, editable combo boxes...)."""
    while widget is not None:
        if isinstance(widget, QLineEdit | QAbstractSpinBox | QTextEdit | QPlainTextEdit):
            return not (isinstance(widget, QTextEdit | QPlainTextEdit) and widget.isReadOnly())
        if isinstance(widget, QComboBox):
            return widget.isEditable()
        parent = widget.parentWidget()
        # A spin box's or combo box's own line edit counts as the box.
        widget = parent if isinstance(parent, QAbstractSpinBox | QComboBox) else None
    return False


def text_field_has_focus() -> bool:
    """True when the focused widget takes typed text."""
    return is_text_field(QApplication.focusWidget())


_ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class TextFieldKeys(QObject):
    """Application event filter: plain keys go to the focused text field, not to shortcuts."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and not (event.modifiers() & _COMMAND_MODIFIERS)
            and is_text_field(QApplication.focusWidget())
        ):
            event.accept()
            return True
        return False


def install_text_field_keys(owner: QObject) -> TextFieldKeys:
    """Install the filter for as long as `owner` lives (the filter is its child)."""
    keys = TextFieldKeys(owner)
    QApplication.instance().installEventFilter(keys)
    return keys


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
