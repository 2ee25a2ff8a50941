"""The training child process: `hc-studio train ...` under QProcess, its JSON lines as events.

A process, not a thread: the window never imports torch, a crash in training cannot take the
window down, and the GPU memory is freed when the child ends. Stopping is polite first (a stop
line on stdin lets the trainer save a checkpoint and export), then `terminate()`, then `kill()`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from ..core.events import Event, parse_event

STOP_LINE = json.dumps({"cmd": "stop"}) + "\n"
STOP_GRACE_MS = 30000  # time to save a checkpoint and export before terminate()
TERMINATE_GRACE_MS = 5000  # then kill()


def train_command(arguments: Sequence[str]) -> tuple[str, list[str]]:
    """(program, arguments) that run `hc-studio train ARGUMENTS` with this Python."""
    return sys.executable, ["-m", "hc_studio.core.cli", "train", *arguments]


class TrainProcess(QObject):
    """Runs one training child and turns its stdout lines into `event` signals."""

    event = Signal(object)  # core.events.Event
    logLine = Signal(str)  # stderr, and stdout lines that are not events
    started = Signal()
    finished = Signal(int, bool)  # (exit code, crashed or killed)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: QProcess | None = None
        self._stdout_buffer = b""
        self._stderr_buffer = b""
        self._stop_timer = QTimer(self)
        self._stop_timer.setSingleShot(True)
        self._stop_timer.timeout.connect(self._escalate)
        self._stopping_stage = 0
        self.stop_grace_ms = STOP_GRACE_MS
        self.terminate_grace_ms = TERMINATE_GRACE_MS

    def is_running(self) -> bool:
        return (
            self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning
        )

    def start(self, program: str, arguments: Sequence[str]) -> None:
        """Start the child (`program arguments`); refuses while one is running."""
        if self.is_running():
            raise RuntimeError("a training run is already going")
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")  # lines arrive as they are written
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        process.started.connect(self.started.emit)
        self._process = process
        self._stdout_buffer = self._stderr_buffer = b""
        self._stopping_stage = 0
        process.start(program, list(arguments))

    def stop(self) -> None:
        """Ask the child to stop (stdin line), then terminate, then kill if it does not."""
        if not self.is_running() or self._stopping_stage:
            return
        self._stopping_stage = 1
        self._process.write(STOP_LINE.encode())
        self.logLine.emit("Stop requested: the run saves its checkpoint and model, then ends.")
        self._stop_timer.start(self.stop_grace_ms)

    def _escalate(self) -> None:
        if not self.is_running():
            return
        if self._stopping_stage == 1:
            self._stopping_stage = 2
            self.logLine.emit("The run did not stop in time: terminating it.")
            self._process.terminate()
            self._stop_timer.start(self.terminate_grace_ms)
        else:
            self.logLine.emit("The run did not end: killing it.")
            self._process.kill()

    def kill_and_wait(self, msecs: int = 5000) -> None:
        """End the child now (the window is closing)."""
        if self.is_running():
            self._process.kill()
            self._process.waitForFinished(msecs)

    def wait(self, msecs: int) -> bool:
        return self._process is None or self._process.waitForFinished(msecs)

    # Reading -----------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._stdout_buffer += bytes(self._process.readAllStandardOutput())
        *lines, self._stdout_buffer = self._stdout_buffer.split(b"\n")
        for raw in lines:
            self._handle_stdout_line(raw.decode("utf-8", errors="replace").strip())

    def _handle_stdout_line(self, line: str) -> None:
        if not line:
            return
        try:
            event: Event = parse_event(line)
        except ValueError:
            self.logLine.emit(line)
            return
        self.event.emit(event)

    def _read_stderr(self) -> None:
        self._stderr_buffer += bytes(self._process.readAllStandardError())
        *lines, self._stderr_buffer = self._stderr_buffer.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", errors="replace").rstrip()
            if text:
                self.logLine.emit(text)

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._stop_timer.stop()
        self._read_stdout()
        self._read_stderr()
        # A last line written without a newline is still in the buffer.
        for buffer_name in ("_stdout_buffer", "_stderr_buffer"):
            rest = getattr(self, buffer_name).decode("utf-8", errors="replace").strip()
            setattr(self, buffer_name, b"")
            if rest and buffer_name == "_stdout_buffer":
                self._handle_stdout_line(rest)
            elif rest:
                self.logLine.emit(rest)
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self._stopping_stage = 0
        self.finished.emit(int(exit_code), crashed)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.logLine.emit(
                f"The training process could not start: {self._process.errorString()}"
            )
            self.finished.emit(-1, True)
