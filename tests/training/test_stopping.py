"""Stopping a run: stop line, closed stdin pipe, SIGTERM -> checkpoint, ONNX, done."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hc_studio.core.events import Done, Progress, parse_event
from hc_studio.core.training.stopping import StopSignal, is_stop_line


def _wait_for(signal_: StopSignal, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not signal_.requested:
        time.sleep(0.01)
    return signal_.requested


def test_stop_lines_are_recognised() -> None:
    assert is_stop_line('{"cmd": "stop"}\n') and is_stop_line("stop")
    assert not is_stop_line('{"cmd": "pause"}') and not is_stop_line("hello")


def test_eof_of_a_pipe_stops_but_eof_of_a_file_does_not(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        from_pipe = StopSignal()
        from_pipe.watch_stdin(pipe)
        assert _wait_for(from_pipe)
    empty = tmp_path / "empty"
    empty.write_text("")
    with empty.open() as regular_file:
        from_file = StopSignal()
        from_file.watch_stdin(regular_file)
        assert not _wait_for(from_file, 0.3)


@pytest.mark.parametrize("how", ["stop-line", "close-stdin", "sigterm"])
def test_a_running_training_stops_cleanly(
    how, phantom_labelled, tmp_path, cli_command, subprocess_env, tiny_run
) -> None:
    run_dir = tmp_path / "run"
    command = cli_command(
        *tiny_run, "--labeled", str(phantom_labelled), "--iterations", "100000",
        "--val-every", "100000", "--out", str(run_dir),
    )  # fmt: skip
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=subprocess_env,
    )
    try:
        events = []
        for line in process.stdout:
            events.append(parse_event(line))
            if isinstance(events[-1], Progress) and events[-1].iteration >= 2:
                break
        if how == "stop-line":
            process.stdin.write('{"cmd": "stop"}\n')
            process.stdin.flush()
        elif how == "close-stdin":
            process.stdin.close()
        else:
            process.send_signal(signal.SIGTERM)
        events += [parse_event(line) for line in process.stdout]
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    done = events[-1]
    assert isinstance(done, Done) and done.stopped_early
    assert 2 <= done.iteration < 100000
    assert Path(done.last_checkpoint).is_file() and Path(done.onnx_path).is_file()
