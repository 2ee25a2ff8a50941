"""Stopping a run cleanly: a stop line on stdin, stdin closed by the parent, SIGTERM, SIGINT.

A stop request lets the current step finish; the trainer then saves a checkpoint, exports the
ONNX model and ends with `done` (stopped_early=true).

stdin protocol: a line `{"cmd": "stop"}` (or just `stop`) asks to stop. End of file on stdin
also means stop, but only when stdin is a pipe or socket at start: a parent (the GUI) that
closes its end or dies stops the run, while a terminal, /dev/null or a regular file never does.
`watch_stdin=False` (`--no-stdin`) ignores stdin altogether, for detached runs whose stdin is a
pipe that may close (e.g. `nohup`, CI runners).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable
from typing import IO


def stdin_is_pipe(stream: IO[str]) -> bool:
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def is_stop_line(line: str) -> bool:
    text = line.strip()
    if text.lower() == "stop":
        return True
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(message, dict) and message.get("cmd") == "stop"


class StopSignal:
    """A thread-safe "please stop" flag with the reason."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def watch_stdin(self, stream: IO[str] | None = None) -> None:
        """Read `stream` (stdin) in a daemon thread: stop lines and, for a pipe, EOF stop."""
        stream = sys.stdin if stream is None else stream
        if stream is None:
            return
        stop_at_eof = stdin_is_pipe(stream)

        def reader() -> None:
            try:
                for line in stream:
                    if is_stop_line(line):
                        self.request("stop requested on stdin")
                        return
            except (OSError, ValueError):
                return
            if stop_at_eof:
                self.request("stdin closed")

        threading.Thread(target=reader, name="stdin-stop", daemon=True).start()

    def install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM and SIGINT request a stop; a second SIGINT interrupts at once.

        Returns a function that puts the previous handlers back. Does nothing (and returns a
        no-op) outside the main thread, where Python cannot install handlers.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(number: int, _frame) -> None:
            self.request(f"{signal.Signals(number).name} received")
            if number == signal.SIGINT:
                signal.signal(signal.SIGINT, signal.default_int_handler)

        for number in previous:
            signal.signal(number, on_signal)

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler)

        return restore
