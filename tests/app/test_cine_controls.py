"""The cine bar: playback by elapsed time, loop, pause, step, best frame, shortcuts."""

from __future__ import annotations

import pytest
from hc_studio.app.cine_controls import CineControls
from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bar(qtbot):
    clock = FakeClock()
    controls = CineControls(clock=clock)
    qtbot.addWidget(controls)
    controls.clock = clock
    shown: list[int] = []
    controls.frame_requested.connect(shown.append)
    controls.shown = shown
    return controls


def test_playing_advances_by_elapsed_time_not_by_ticks(bar) -> None:
    bar.set_clip(60, 25.0)
    assert bar.frame_label.text() == "1 / 60 · 25 fps"
    bar.play()
    assert bar.timer.isActive()
    bar.clock.now += 0.45  # 11.25 frames at 25 fps, in one late tick
    bar.tick()
    assert bar.index == 11
    assert bar.shown == [11]
    assert bar.frame_label.text() == "12 / 60 · 25 fps"
    bar.clock.now += 0.02  # with the quarter left over, less than a frame: nothing new to show
    bar.tick()
    assert bar.shown == [11]


def test_loop_wraps_and_no_loop_stops_on_the_last_frame(bar) -> None:
    bar.set_clip(10, 10.0)
    bar.play()
    bar.clock.now += 1.25  # 12.5 frames: past the end of a 10-frame clip
    bar.tick()
    assert bar.index == 2 and bar.playing

    bar.loop_box.setChecked(False)
    bar.clock.now += 5.0
    bar.tick()
    assert bar.index == 9
    assert not bar.playing and not bar.timer.isActive()
    assert bar.play_button.text() == "▶"


def test_pause_stops_the_clip(bar) -> None:
    bar.set_clip(60, 25.0)
    bar.play_button.click()
    assert bar.playing
    bar.play_button.click()
    assert not bar.playing and not bar.timer.isActive()
    bar.clock.now += 1.0
    bar.tick()
    assert bar.index == 0 and bar.shown == []


def test_steps_pause_and_wrap_when_looping(bar) -> None:
    bar.set_clip(5, 25.0)
    bar.play()
    bar.back_button.click()
    assert not bar.playing
    assert bar.index == 4 and bar.shown == [4]
    bar.forward_button.click()
    assert bar.index == 0 and bar.shown == [4, 0]


def test_best_frame_button_jumps_and_is_off_without_a_suggestion(bar) -> None:
    bar.set_clip(30, 25.0)
    assert not bar.best_button.isEnabled()
    bar.set_best_frame(17)
    assert bar.best_button.isEnabled()
    bar.play()
    bar.best_button.click()
    assert bar.index == 17 and not bar.playing and bar.shown == [17]
    with pytest.raises(ValueError, match="outside the clip"):
        bar.set_best_frame(30)
    bar.set_clip(8, 25.0)  # a new clip forgets the old suggestion
    assert bar.best_frame is None and not bar.best_button.isEnabled()


def test_a_single_frame_or_no_clip_disables_playback(bar) -> None:
    assert bar.frame_label.text() == "no clip"
    assert not bar.play_button.isEnabled()
    bar.set_clip(1, 25.0)
    assert not bar.play_button.isEnabled()
    bar.play()
    assert not bar.playing


def test_shortcuts_act_only_when_no_text_field_has_focus(qtbot) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    bar = CineControls(clock=FakeClock(), shortcut_parent=host)
    field = QLineEdit()
    layout = QVBoxLayout(host)
    layout.addWidget(bar)
    layout.addWidget(field)
    bar.set_clip(10, 25.0)
    host.show()
    qtbot.waitExposed(host)
    host.activateWindow()
    right = bar.shortcuts[2]

    bar.back_button.setFocus()
    right.activated.emit()
    assert bar.index == 1

    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=2000)
    right.activated.emit()
    assert bar.index == 1  # typing in the field never moves the clip


def test_the_timer_plays_the_clip_on_its_own(qtbot) -> None:
    bar = CineControls()  # the real monotonic clock and QTimer
    qtbot.addWidget(bar)
    bar.set_clip(100, 200.0)
    assert bar.timer.interval() == 5
    with qtbot.waitSignal(bar.frame_requested, timeout=2000):
        bar.play()
    qtbot.waitUntil(lambda: bar.index >= 3, timeout=2000)
    bar.pause()
