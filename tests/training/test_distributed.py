"""`hc-studio train` under torchrun with two CPU processes (gloo)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hc_studio.core.events import Done, Start, parse_event


@pytest.mark.slow
def test_two_processes_train_and_end_with_done(
    phantom_labelled, phantom_unlabelled, tmp_path, subprocess_env, tiny_run
) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "hc_studio.core.cli", "train", *tiny_run,
        "--labeled", str(phantom_labelled), "--unlabeled", str(phantom_unlabelled),
        "--method", "mean-teacher", "--iterations", "3", "--out", str(tmp_path / "run"),
        "--no-stdin",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = [parse_event(line) for line in result.stdout.splitlines()]
    assert sum(isinstance(e, Start) for e in events) == 1  # only rank 0 reports
    start = next(e for e in events if isinstance(e, Start))
    assert start.config["processes"] == 2
    done = events[-1]
    # Done is only reached when both ranks hold identical networks (checked at the end).
    assert isinstance(done, Done) and done.iteration == 3 and done.onnx_path
