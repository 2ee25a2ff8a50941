"""Run one bad-input case through the real `hc-studio` command and classify what happened.

A case builds its inputs in a fresh folder, names the command line to run and says what a
trustworthy tool must do with it. The harness runs the command in a child process (so crashes,
hangs and kills are seen as a user would see them), fingerprints every file the case declares
precious before and after, and sorts the result into one of the outcome columns of
`docs/reliability.md`:

- ``handled``: a valid input measured as it should be (the controls of the campaign);
- ``clear error``: refused, with a message that names the file or option and the problem;
- ``crash``: a Python traceback, a signal, or an exit code outside the documented ones;
- ``hang``: no answer within the time limit;
- ``silently wrong``: a number shown as right when it is not (a measurement of something that
  must be refused, a wrong calibration, an injectable CSV cell, an exit code of success);
- ``data lost``: a precious file (an input, an older complete output) changed or vanished.
"""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("handled", "clear error", "crash", "hang", "silently wrong", "data lost")
DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 130, 143}
MEASURED_STATUSES = ("ok", "review")


@dataclass(frozen=True)
class Run:
    """What the command did: exit code (None on a hang), its output, and the case folder."""

    returncode: int | None
    stdout: str
    stderr: str
    folder: Path
    seconds: float

    def rows(self, csv_name: str = "out.csv") -> list[dict[str, str]]:
        path = self.folder / csv_name
        if not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            return list(csv.DictReader(handle))

    def row_for(self, name: str, csv_name: str = "out.csv") -> dict[str, str] | None:
        for row in self.rows(csv_name):
            if Path(row.get("file", "")).name.lstrip("'") == name:
                return row
        return None


# A check returns None when the run is right, else (outcome, why).
Check = Callable[[Run], "tuple[str, str] | None"]


@dataclass
class Case:
    """One bad input: `build(folder)` writes the inputs and returns the command's arguments."""

    group: str
    name: str
    build: Callable[[Path], list[str]]
    check: Check
    precious: Callable[[Path], list[Path]] = field(default=lambda folder: [])
    timeout_s: float = 120.0
    # Optional: (seconds after start, signal) to send to the running command (kill -9 tests).
    interrupt: tuple[float, int] | None = None
    # Run after the command, in the same folder (e.g. a --resume after a kill); its Run is checked.
    then: Callable[[Path], list[str]] | None = None


@dataclass(frozen=True)
class Result:
    case: Case
    outcome: str
    why: str
    seconds: float


def fingerprint(paths: list[Path]) -> dict[Path, str | None]:
    """Content hash of each path (None when absent); a symlink's target is hashed as itself."""
    prints: dict[Path, str | None] = {}
    for path in paths:
        try:
            prints[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            prints[path] = None
    return prints


def hc_studio(
    args: list[str], folder: Path, timeout_s: float, interrupt: tuple[float, int] | None = None
) -> Run:
    """Run `hc-studio ARGS` in `folder` as a separate process."""
    command = [sys.executable, "-m", "hc_studio.core.cli", *args]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    )
    try:
        if interrupt is not None:
            delay, sig = interrupt
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=timeout_s)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        code = None
    return Run(code, stdout, stderr, folder, time.monotonic() - start)


def classify_process(run: Run, expect_signal: bool = False) -> tuple[str, str] | None:
    """The outcomes any run can have regardless of the case: hang, crash."""
    if run.returncode is None:
        return "hang", f"no answer in {run.seconds:.0f} s"
    if "Traceback (most recent call last)" in run.stderr + run.stdout:
        last = (run.stderr.strip().splitlines() or ["?"])[-1]
        return "crash", f"traceback: {last[:120]}"
    if run.returncode < 0 and not expect_signal:
        return "crash", f"killed by signal {-run.returncode}"
    if run.returncode >= 0 and run.returncode not in DOCUMENTED_EXIT_CODES:
        return "crash", f"undocumented exit code {run.returncode}"
    return None


def run_case(case: Case, folder: Path) -> Result:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        args = case.build(folder)
    except Exception as error:  # a broken case must not stop the campaign; it is reported
        return Result(case, "harness error", f"building the case failed: {error!r}", 0.0)
    precious = case.precious(folder)
    before = fingerprint(precious)
    run = hc_studio(args, folder, case.timeout_s, case.interrupt)
    expect_signal = case.interrupt is not None
    if case.then is not None:
        first_problem = classify_process(run, expect_signal=True)
        if first_problem and first_problem[0] == "hang":
            return Result(case, *first_problem, run.seconds)
        run = hc_studio(case.then(folder), folder, case.timeout_s)
        expect_signal = False
    lost = [p.name for p, digest in fingerprint(precious).items() if digest != before[p]]
    if lost:
        return Result(case, "data lost", "changed or removed: " + ", ".join(lost), run.seconds)
    problem = classify_process(run, expect_signal)
    if problem is None:
        problem = case.check(run)
    if problem is None:
        # The check accepted the run; refused cases are clear errors, the rest handled.
        outcome = "clear error" if _refused(run) else "handled"
        return Result(case, outcome, "", run.seconds)
    return Result(case, problem[0], problem[1], run.seconds)


def _refused(run: Run) -> bool:
    if run.returncode not in (0, None):
        return True
    return any(row.get("status", "").split(":")[0] not in MEASURED_STATUSES for row in run.rows())


# ----- checks used by the cases -------------------------------------------------------------


def refused_file(name: str) -> Check:
    """The file `name` gets no measurement, and the reason names it (row status or message)."""

    def check(run: Run) -> tuple[str, str] | None:
        row = run.row_for(name)
        if row is not None:
            status = row.get("status", "")
            if status.split(":")[0] in MEASURED_STATUSES or row.get("hc"):
                return "silently wrong", f"{name} measured: {status} HC {row.get('hc')}"
            if not status or status in MEASURED_STATUSES:
                return "silently wrong", f"{name}: no reason given"
            return None
        text = run.stderr + run.stdout
        if run.returncode == 0:
            return "silently wrong", f"{name} left out without a word, exit 0"
        if name not in text and Path(name).stem not in text:
            return "silently wrong", f"the message does not name {name}: {text.strip()[-160:]}"
        return None

    return check


def measured_file(name: str, *, calibrated: bool | None = None) -> Check:
    """A valid control: `name` is measured (ok or review) and the batch exit code agrees."""

    def check(run: Run) -> tuple[str, str] | None:
        row = run.row_for(name)
        if row is None or not row.get("hc"):
            status = row.get("status") if row else "no row"
            return "silently wrong", f"valid {name} not measured ({status}): {run.stderr[-160:]}"
        if calibrated is not None and (row.get("unit") == "mm") != calibrated:
            return (
                "silently wrong",
                f"{name}: unit {row.get('unit')}, expected calibrated={calibrated}",
            )
        return None

    return check


def usage_error(*words: str) -> Check:
    """The whole command is refused (exit 2) with a message holding each of `words`."""

    def check(run: Run) -> tuple[str, str] | None:
        if run.returncode != 2:
            return "silently wrong", f"exit {run.returncode}, expected a refusal (2)"
        text = (run.stderr + run.stdout).lower()
        missing = [w for w in words if w.lower() not in text]
        if missing:
            return "silently wrong", f"message lacks {missing}: {run.stderr.strip()[-160:]}"
        return None

    return check


def all_of(*checks: Check) -> Check:
    def check(run: Run) -> tuple[str, str] | None:
        for each in checks:
            problem = each(run)
            if problem is not None:
                return problem
        return None

    return check


def kill_signal() -> int:
    return signal.SIGKILL
