"""Every benchmark script starts, imports what it needs and explains itself with --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"

SCRIPTS = ("make_split", "accuracy", "report", "speed", "figures")


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_runs_and_says_what_it_reproduces(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS_DIR / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
    assert "Reproduces" in result.stdout  # the docstring says what the script reproduces
