"""A compact cine bar: play/pause, step, loop, the frame label and a jump to the best frame.

The playback state is `core.cine.CinePlayer`; this bar only owns the timer and the buttons. Each
timer tick advances the player by the time measured since the previous tick (not by a fixed
step), so a late tick skips frames instead of slowing the clip. When the frame to show changes,
`frame_requested(index)` is emitted: the view showing frames connects to it.

Keyboard (only while no text field has the focus, so typing a value never moves the clip):
Space plays/pauses, Left/Right step one frame, B jumps to the best frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QWidget,
)

from ..core.cine import CinePlayer
from .keys import text_field_has_focus


class CineControls(QWidget):
    """Play/pause, step back/forward, loop, "frame / count · fps", and "Best frame".

    `set_clip(n_frames, fps)` arms it for a clip (a single frame disables it);
    `set_best_frame(index | None)` enables the best-frame button. `clock` returns seconds (a
    monotonic clock; tests pass a fake one).
    """

    frame_requested = Signal(int)

    def __init__(
        self,
        parent: QWidget | None = None,
        clock: Callable[[], float] = time.monotonic,
        shortcut_parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._last_tick: float | None = None
        self.player: CinePlayer | None = None
        self.best_frame: int | None = None

        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.tick)

        self.play_button = QToolButton(text="▶", toolTip="Play / pause (Space)")
        self.play_button.setCheckable(True)
        self.back_button = QToolButton(text="◀|", toolTip="Previous frame (Left)")
        self.forward_button = QToolButton(text="|▶", toolTip="Next frame (Right)")
        self.loop_box = QCheckBox("Loop", checked=True)
        self.frame_label = QLabel("no clip")
        self.frame_label.setMinimumWidth(130)
        self.best_button = QPushButton("Best frame", toolTip="Jump to the suggested frame (B)")

        self.play_button.clicked.connect(self._on_play_clicked)
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.loop_box.toggled.connect(self._on_loop_toggled)
        self.best_button.clicked.connect(self.go_to_best_frame)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        for widget in (self.back_button, self.play_button, self.forward_button):
            layout.addWidget(widget)
        layout.addWidget(self.loop_box)
        layout.addWidget(self.frame_label)
        layout.addStretch(1)
        layout.addWidget(self.best_button)

        self.shortcuts: list[QShortcut] = []
        owner = shortcut_parent or self
        for key, action in (
            (Qt.Key.Key_Space, self.toggle),
            (Qt.Key.Key_Left, lambda: self.step(-1)),
            (Qt.Key.Key_Right, lambda: self.step(1)),
            (Qt.Key.Key_B, self.go_to_best_frame),
        ):
            shortcut = QShortcut(QKeySequence(key), owner)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self._guarded(action))
            self.shortcuts.append(shortcut)
        self._refresh()

    # ---- the clip ------------------------------------------------------------------------------

    def set_clip(self, n_frames: int, fps: float) -> None:
        """Show a clip of `n_frames` at `fps` from its first frame, paused; forget the best
        frame (it belonged to the previous clip)."""
        self.timer.stop()
        self.player = CinePlayer(n_frames, fps, loop=self.loop_box.isChecked())
        self.timer.setInterval(self.player.tick_ms)
        self.best_frame = None
        self._refresh()

    def clear(self) -> None:
        """No clip (a still image is shown)."""
        self.timer.stop()
        self.player, self.best_frame = None, None
        self._refresh()

    def set_best_frame(self, index: int | None) -> None:
        if index is not None and (self.player is None or not 0 <= index < self.player.n_frames):
            raise ValueError(f"best frame {index} is outside the clip")
        self.best_frame = index
        self._refresh()

    def show_frame(self, index: int) -> None:
        """Follow a frame chosen elsewhere (a scrubber, the frame list) without emitting."""
        if self.player is not None:
            self.player.seek(index)
            self._refresh()

    @property
    def index(self) -> int | None:
        return None if self.player is None else self.player.index

    @property
    def playing(self) -> bool:
        return self.player is not None and self.player.playing

    # ---- actions -------------------------------------------------------------------------------

    def play(self) -> None:
        if self.player is None:
            return
        before = self.player.index
        self.player.play()
        if self.player.playing:
            self._last_tick = self._clock()
            self.timer.start()
        if self.player.index != before:  # replay from the start after the end
            self.frame_requested.emit(self.player.index)
        self._refresh()

    def pause(self) -> None:
        if self.player is None:
            return
        self.player.pause()
        self.timer.stop()
        self._refresh()

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def step(self, delta: int) -> None:
        if self.player is None:
            return
        self.timer.stop()
        before = self.player.index
        self.player.step(delta)
        self._emit_if_moved(before)

    def go_to_best_frame(self) -> None:
        if self.player is None or self.best_frame is None:
            return
        self.pause()
        before = self.player.index
        self.player.seek(self.best_frame)
        self._emit_if_moved(before)

    def tick(self) -> None:
        """The timer's slot: advance by the time elapsed since the last tick."""
        if self.player is None or not self.player.playing:
            self.timer.stop()
            return
        now = self._clock()
        elapsed = now - (self._last_tick if self._last_tick is not None else now)
        self._last_tick = now
        if self.player.advance(elapsed):
            self.frame_requested.emit(self.player.index)
        if not self.player.playing:  # reached the end without loop
            self.timer.stop()
        self._refresh()

    # ---- internals -----------------------------------------------------------------------------

    def _guarded(self, action: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if not text_field_has_focus():
                action()

        return run

    def _on_play_clicked(self) -> None:
        self.toggle()

    def _on_loop_toggled(self, checked: bool) -> None:
        if self.player is not None:
            self.player.loop = checked

    def _emit_if_moved(self, before: int) -> None:
        assert self.player is not None
        if self.player.index != before:
            self.frame_requested.emit(self.player.index)
        self._refresh()

    def _refresh(self) -> None:
        player = self.player
        has_clip = player is not None and player.n_frames > 1
        for widget in (self.play_button, self.back_button, self.forward_button, self.loop_box):
            widget.setEnabled(has_clip)
        self.best_button.setEnabled(player is not None and self.best_frame is not None)
        self.best_button.setToolTip(
            "No best frame suggested for this clip"
            if self.best_frame is None
            else f"Jump to frame {self.best_frame + 1}, the suggested one (B)"
        )
        playing = self.playing
        self.play_button.setChecked(playing)
        self.play_button.setText("❚❚" if playing else "▶")
        if player is None:
            self.frame_label.setText("no clip")
        else:
            self.frame_label.setText(f"{player.index + 1} / {player.n_frames} · {player.fps:g} fps")
