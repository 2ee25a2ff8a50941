"""The benchmark scripts live in benchmarks/ (not a package): put that folder on sys.path, as
running `python benchmarks/<script>.py` does."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS_DIR) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS_DIR))
