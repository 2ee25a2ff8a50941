"""The list of opened frames with each frame's status (a cine's frames under its file)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

from .workers import FrameKey, ListedFile

KEY_ROLE = Qt.ItemDataRole.UserRole
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1
# Words too long for the narrow column, shown shorter (the tooltip has the full status).
SHORT_WORDS = {"not measured": "–"}

# Status word -> text colour in the list.
STATUS_COLOURS = {
    "not measured": QColor(140, 140, 140),
    "measuring…": QColor(120, 160, 220),
    "ok": QColor(60, 170, 80),
    "edited": QColor(60, 130, 230),
    "review": QColor(230, 140, 20),
    "accepted": QColor(30, 150, 60),
    "rejected": QColor(200, 60, 60),
    "no head": QColor(200, 60, 60),
    "not a head": QColor(200, 60, 60),
    "error": QColor(200, 40, 40),
    "no model": QColor(200, 120, 40),
}


class FrameList(QTreeWidget):
    """Files and frames; `frameSelected(key)` when the user picks a frame."""

    frameSelected = Signal(object)  # FrameKey

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["Frame", "Status", "HC"])
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.header().setStretchLastSection(False)
        self.header().resizeSection(0, 120)
        self.header().resizeSection(1, 68)
        self.header().resizeSection(2, 76)
        self._items: dict[FrameKey, QTreeWidgetItem] = {}
        self._order: list[FrameKey] = []
        self.currentItemChanged.connect(self._on_current_changed)

    # Contents ----------------------------------------------------------------------------------
    def add_files(self, files: list[ListedFile]) -> list[FrameKey]:
        """Add files not listed yet; returns the keys of the frames added, in list order."""
        added: list[FrameKey] = []
        for listed in files:
            if (listed.path, 0) in self._items:
                continue
            added.extend(self._add_file(listed))
        return added

    def _add_file(self, listed: ListedFile) -> list[FrameKey]:
        name = Path(listed.path).name
        top = QTreeWidgetItem([name])
        top.setToolTip(0, listed.path)
        self.addTopLevelItem(top)
        if listed.n_frames == 1:
            keys = [(listed.path, 0)]
            self._register(keys[0], top)
        else:
            top.setText(1, f"{listed.n_frames} frames")
            keys = [(listed.path, index) for index in range(listed.n_frames)]
            for key in keys:
                child = QTreeWidgetItem([f"frame {key[1] + 1}"])
                top.addChild(child)
                self._register(key, child)
        for key in keys:
            self.set_status(key, "error" if listed.error else "not measured", detail=listed.error)
        return keys

    def _register(self, key: FrameKey, item: QTreeWidgetItem) -> None:
        item.setData(0, KEY_ROLE, key)
        self._items[key] = item
        self._order.append(key)

    def clear_frames(self) -> None:
        self.clear()
        self._items.clear()
        self._order.clear()

    def frame_keys(self) -> list[FrameKey]:
        return list(self._order)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    # Status ------------------------------------------------------------------------------------
    def set_status(
        self, key: FrameKey, status: str, hc_text: str = "", detail: str | None = None
    ) -> None:
        item = self._items.get(key)
        if item is None:
            return
        item.setText(1, SHORT_WORDS.get(status, status))
        item.setData(1, STATUS_ROLE, status)
        item.setText(2, hc_text)
        item.setForeground(1, QBrush(STATUS_COLOURS.get(status, QColor(160, 160, 160))))
        item.setToolTip(1, detail or status)

    def status(self, key: FrameKey) -> str:
        item = self._items.get(key)
        return item.data(1, STATUS_ROLE) if item is not None else ""

    # Navigation --------------------------------------------------------------------------------
    def current_key(self) -> FrameKey | None:
        return self._item_key(self.currentItem())

    @staticmethod
    def _item_key(item: QTreeWidgetItem | None) -> FrameKey | None:
        if item is None:
            return None
        key = item.data(0, KEY_ROLE)
        if key is None and item.childCount():  # a cine's file row stands for its first frame
            key = item.child(0).data(0, KEY_ROLE)
        return tuple(key) if key is not None else None

    def select(self, key: FrameKey) -> None:
        item = self._items.get(key)
        if item is not None and item is not self.currentItem():
            self.setCurrentItem(item)
            self.scrollToItem(item)

    def neighbour(self, key: FrameKey | None, step: int) -> FrameKey | None:
        """The frame `step` places after (or before, for negative) `key`, clamped to the list."""
        if not self._order:
            return None
        if key not in self._items:
            return self._order[0]
        index = self._order.index(key) + step
        return self._order[max(0, min(len(self._order) - 1, index))]

    def _on_current_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        key = self._item_key(current)
        if key is not None:
            self.frameSelected.emit(key)
