"""Train and evaluate every method at every labelled fraction on a fixed patient-level split.

Reproduces the accuracy and ablation tables of docs/benchmarks.md. Each run of `--runs` is
`METHOD@FRACTION[:ABLATION[+ABLATION...]]`, e.g. `supervised@0.1`, `ersr@0.1:no-filter`,
`ersr@0.1:no-filter+no-symmetry` (ablations: no-filter, no-ellipse-refine, no-symmetry). For each:

1. `hc-studio train --labeled SPLIT/train --labeled-fraction FRACTION --val SPLIT/val
   [--unlabeled DIR] --method METHOD ... --out RESULTS_DIR/<run>` (the unlabelled folder is given
   to every method but the supervised one; each folder's pixel-size CSV is found beside it),
   output in RESULTS_DIR/<run>/train.log;
2. `hc-studio evaluate SPLIT/val --model RESULTS_DIR/<run>/model.onnx --json
   RESULTS_DIR/<run>/evaluation.json --per-frame RESULTS_DIR/<run>/per_frame.csv`.
   model.onnx is the trainer's best checkpoint, chosen on the same val frames (slightly
   optimistic); `--model-from last` exports and evaluates the last checkpoint instead
   (model_last.onnx, evaluation_last.json, per_frame_last.csv).

Up to `--jobs` runs go at once, each a subprocess limited to `--threads-per-job` threads (and
pinned to its own cores when they suffice). RESULTS_DIR/summary.json gets one row per run (wall
times, iterations, image size, frames, the evaluation's metrics), rewritten after every run. A
failing run gets a row saying why and the others go on. Running the same command again skips the
runs already evaluated, reuses a finished training (model.onnx and a `done` event) and continues
an interrupted one from its last checkpoint (`--resume`, with the settings it started with).
Make the split first with benchmarks/make_split.py.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hc_studio.core import run_folder
from hc_studio.core.atomic import atomic_write
from hc_studio.core.events import Done, Error, Start, read_events
from machine_info import describe_machine

# Ablation -> the field of ERSR's Config that turns the part off (`hc-studio train --set`).
ABLATION_FLAGS = {
    "no-filter": "use_filter=false",
    "no-ellipse-refine": "use_ellipse_refine=false",
    "no-symmetry": "use_symmetry=false",
}
SUPERVISED = "supervised"
MODEL_FILE = run_folder.MODEL_FILE  # the trainer's export of its best checkpoint (on --val)
LAST_MODEL_FILE = "model_last.onnx"
LAST_CHECKPOINT = f"{run_folder.CHECKPOINTS_FOLDER}/{run_folder.LAST_CHECKPOINT}"
EVENTS_FILE = run_folder.EVENTS_FILE
MODEL_CHOICES = ("best", "last")
TIMING_FILE = "timing.json"
SUMMARY_FILE = "summary.json"
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
EVALUATE_OK_CODES = (0, 1)  # 1: evaluated, but some frames gave no ellipse


class RunSpecError(ValueError):
    """A `--runs` entry that cannot be understood; str() quotes it."""


@dataclass(frozen=True)
class RunSpec:
    """One training run: `method` trained with `fraction` (0-1] of the train side's labels."""

    method: str
    fraction: float
    ablations: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Folder name, e.g. `ersr-10pct-no-filter`."""
        return "-".join([self.method, f"{format_percent(self.fraction)}pct", *self.ablations])

    @property
    def spec(self) -> str:
        """The `--runs` entry this run came from (normalised)."""
        text = f"{self.method}@{self.fraction:g}"
        return f"{text}:{'+'.join(self.ablations)}" if self.ablations else text


def format_percent(fraction: float) -> str:
    """0.1 -> "10", 0.025 -> "2.5", 1.0 -> "100"."""
    return f"{round(fraction * 100, 6):g}"


def parse_run_spec(text: str) -> RunSpec:
    """`ersr@0.1:no-filter+no-symmetry` -> RunSpec("ersr", 0.1, ("no-filter", "no-symmetry"))."""
    entry = text.strip()
    head, _, ablation_text = entry.partition(":")
    method, at, fraction_text = head.partition("@")
    if not at or not method.strip():
        raise RunSpecError(f"{entry!r}: expected METHOD@FRACTION[:ABLATION], e.g. ersr@0.1")
    try:
        fraction = float(fraction_text)
    except ValueError:
        raise RunSpecError(f"{entry!r}: the fraction {fraction_text!r} is not a number") from None
    if not 0.0 < fraction <= 1.0:
        raise RunSpecError(f"{entry!r}: the labelled fraction must be in (0, 1]")
    ablations = tuple(a.strip() for a in ablation_text.split("+") if a.strip())
    unknown = [a for a in ablations if a not in ABLATION_FLAGS]
    if unknown:
        known = ", ".join(ABLATION_FLAGS)
        raise RunSpecError(f"{entry!r}: unknown ablation {unknown[0]!r} (known: {known})")
    return RunSpec(method.strip(), fraction, ablations)


def parse_runs(text: str) -> list[RunSpec]:
    """The comma-separated `--runs` list; raises RunSpecError on a bad or repeated entry."""
    specs = [parse_run_spec(part) for part in text.split(",") if part.strip()]
    if not specs:
        raise RunSpecError("--runs is empty")
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RunSpecError(f"run listed twice: {repeated[0]}")
    return specs


@dataclass(frozen=True)
class Settings:
    """What every run shares (the command line, minus the run list)."""

    split_dir: Path
    results_dir: Path
    iterations: int
    batch_size: int
    image_size: tuple[int, int]
    device: str = "cuda"
    eval_device: str = "auto"
    model_from: str = "best"
    unlabelled: Path | None = None
    unlabelled_csv: Path | None = None
    width: int | None = None
    seed: int = 0
    threads_per_job: int = 1
    extra_train_args: tuple[str, ...] = ()
    hc_studio: tuple[str, ...] = (sys.executable, "-m", "hc_studio.core.cli")
    run_timeout_s: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def train_dir(self) -> Path:
        return self.split_dir / "train"

    @property
    def val_dir(self) -> Path:
        return self.split_dir / "val"

    def side_csv(self, side: str) -> Path:
        return self.split_dir / f"{side}_pixel_size.csv"


def train_command(spec: RunSpec, settings: Settings, run_dir: Path) -> list[str]:
    """The `hc-studio train` command line of one run."""
    height, width = settings.image_size
    command = [
        *settings.hc_studio,
        "train",
        "--labeled", str(settings.train_dir),
        "--val", str(settings.val_dir),
        "--labeled-fraction", f"{spec.fraction:g}",
        "--method", spec.method,
        "--iterations", str(settings.iterations),
        "--batch-size", str(settings.batch_size),
        "--image-size", str(height), str(width),
        "--device", settings.device,
        "--seed", str(settings.seed),
        "--out", str(run_dir),
        "--no-stdin",
    ]  # fmt: skip
    if (run_dir / LAST_CHECKPOINT).is_file():  # an interrupted run: continue it
        command.append("--resume")
    if settings.unlabelled is not None and spec.method != SUPERVISED:
        command += ["--unlabeled", str(settings.unlabelled)]
    if settings.width is not None:
        command += ["--width", str(settings.width)]
    for ablation in spec.ablations:
        command += ["--set", ABLATION_FLAGS[ablation]]
    return command + list(settings.extra_train_args)


def evaluation_file(model_from: str) -> str:
    """evaluation.json for the best model, evaluation_last.json for the last one."""
    return "evaluation.json" if model_from == "best" else f"evaluation_{model_from}.json"


def per_frame_file(model_from: str) -> str:
    return "per_frame.csv" if model_from == "best" else f"per_frame_{model_from}.csv"


def model_file(model_from: str) -> str:
    return MODEL_FILE if model_from == "best" else LAST_MODEL_FILE


def export_last_command(settings: Settings, run_dir: Path) -> list[str]:
    """`hc-studio export` of the last checkpoint (a model not chosen on the val frames)."""
    return [
        *settings.hc_studio,
        "export", str(run_dir / LAST_CHECKPOINT),
        "--out", str(run_dir / LAST_MODEL_FILE),
    ]  # fmt: skip


def evaluate_command(settings: Settings, run_dir: Path) -> list[str]:
    """The `hc-studio evaluate` command line scoring one run's model on the val side."""
    return [
        *settings.hc_studio,
        "evaluate", str(settings.val_dir),
        "--model", str(run_dir / model_file(settings.model_from)),
        "--pixel-csv", str(settings.side_csv("val")),
        "--device", settings.eval_device,
        "--json", str(run_dir / evaluation_file(settings.model_from)),
        "--per-frame", str(run_dir / per_frame_file(settings.model_from)),
    ]  # fmt: skip


def core_slots(jobs: int, threads_per_job: int, cores: Sequence[int]) -> list[list[int] | None]:
    """Cores to pin each of `jobs` concurrent runs to: disjoint sets of `threads_per_job` cores
    when there are enough, else None for every slot (no pinning; threads still limited)."""
    cores = sorted(cores)
    if jobs * threads_per_job > len(cores):
        return [None] * jobs
    return [cores[i * threads_per_job : (i + 1) * threads_per_job] for i in range(jobs)]


def child_environment(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in THREAD_ENV:
        env[name] = str(threads)
    return env


def run_logged(
    command: list[str], log_path: Path, env: dict[str, str], cores: list[int] | None, timeout_s
) -> tuple[int, float]:
    """Run `command` with stdout and stderr into `log_path`; (exit code, wall seconds).

    A run past `timeout_s` gets SIGTERM (the trainer then saves and exports what it has), then
    SIGKILL a minute later; its exit code is then 124.
    """

    def pin() -> None:
        if cores is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cores)

    started = time.monotonic()
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"$ {shlex.join(command)}\n")
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,  # never a pipe: the trainer reads EOF on a pipe as "stop"
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=pin,
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            code = 124
    return code, time.monotonic() - started


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _events(run_dir: Path) -> list:
    path = run_dir / EVENTS_FILE
    return read_events(path) if path.is_file() else []


def training_finished(run_dir: Path) -> bool:
    """model.onnx exists and the run's events end with `done`."""
    events = _events(run_dir)
    return (run_dir / MODEL_FILE).is_file() and any(isinstance(e, Done) for e in events)


def failure_reason(run_dir: Path, log_name: str, code: int) -> str:
    """Why a step failed: the trainer's `error` event, else the log's last line, with the code."""
    errors = [e for e in _events(run_dir) if isinstance(e, Error)]
    if errors and log_name == "train.log":
        return f"{errors[-1].message} (exit code {code})"
    if code == 124:
        return "timed out"
    try:
        lines = (run_dir / log_name).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
    return f"{last[:300]} (exit code {code}; see {log_name})"


def build_row(spec: RunSpec, settings: Settings, run_dir: Path) -> dict:
    """The summary row of one run, from what its folder holds."""
    events = _events(run_dir)
    start = next((e for e in events if isinstance(e, Start)), None)
    done = next((e for e in reversed(events) if isinstance(e, Done)), None)
    timing = _read_json(run_dir / TIMING_FILE) or {}
    row: dict = {
        "run": spec.name,
        "spec": spec.spec,
        "method": spec.method,
        "fraction": spec.fraction,
        "ablations": list(spec.ablations),
        "status": "ok",
        "reason": "",
        "iterations_planned": settings.iterations,
        "iterations": done.iteration if done else None,
        "stopped_early": done.stopped_early if done else None,
        "best_iteration": done.best_iteration if done else None,
        "batch_size": settings.batch_size,
        "image_size": list(settings.image_size),
        "width": settings.width,
        "counts": dict(start.counts) if start else {},
        "train_wall_s": timing.get("train_wall_s"),
        "eval_wall_s": timing.get("eval_wall_s"),
        "run_dir": str(run_dir),
    }
    row["model_from"] = settings.model_from
    row["per_frame_file"] = per_frame_file(settings.model_from)
    evaluation = _read_json(run_dir / evaluation_file(settings.model_from))
    if evaluation is None:
        row.update(status="failed", reason=timing.get("failure", "not evaluated"))
        return row
    row["frames"] = evaluation.get("frames")
    row["no_ellipse"] = len(evaluation.get("failures", []))
    row["metrics"] = {
        key: value
        for key, value in evaluation.items()
        if isinstance(value, dict) and "mean" in value
    }
    return row


def _save_timing(run_dir: Path, **values) -> None:
    timing = _read_json(run_dir / TIMING_FILE) or {}
    timing.update(values)
    with atomic_write(run_dir / TIMING_FILE) as handle:
        handle.write(json.dumps(timing, indent=2) + "\n")


def execute_run(spec: RunSpec, settings: Settings, cores: list[int] | None, say) -> dict:
    """Train (unless finished before) and evaluate one run; returns its summary row."""
    run_dir = settings.results_dir / spec.name
    if (run_dir / evaluation_file(settings.model_from)).is_file():
        say(f"{spec.name}: evaluated before, skipped")
        return build_row(spec, settings, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = child_environment(settings.threads_per_job)
    if training_finished(run_dir):
        say(f"{spec.name}: trained before, evaluating")
    else:
        say(f"{spec.name}: training")
        command = train_command(spec, settings, run_dir)
        code, wall = run_logged(command, run_dir / "train.log", env, cores, settings.run_timeout_s)
        _save_timing(run_dir, train_wall_s=round(wall, 1), train_exit_code=code)
        if not (run_dir / MODEL_FILE).is_file():
            _save_timing(run_dir, failure="training: " + failure_reason(run_dir, "train.log", code))
            say(f"{spec.name}: training failed")
            return build_row(spec, settings, run_dir)
    if settings.model_from == "last" and not (run_dir / LAST_MODEL_FILE).is_file():
        command = export_last_command(settings, run_dir)
        code, _ = run_logged(command, run_dir / "export.log", env, cores, None)
        if code != 0 or not (run_dir / LAST_MODEL_FILE).is_file():
            _save_timing(run_dir, failure="export: " + failure_reason(run_dir, "export.log", code))
            say(f"{spec.name}: export of the last checkpoint failed")
            return build_row(spec, settings, run_dir)
    command = evaluate_command(settings, run_dir)
    code, wall = run_logged(command, run_dir / "evaluate.log", env, cores, None)
    _save_timing(run_dir, eval_wall_s=round(wall, 1), eval_exit_code=code)
    evaluated = (run_dir / evaluation_file(settings.model_from)).is_file()
    if code not in EVALUATE_OK_CODES or not evaluated:
        _save_timing(
            run_dir, failure="evaluation: " + failure_reason(run_dir, "evaluate.log", code)
        )
        say(f"{spec.name}: evaluation failed")
    else:
        say(f"{spec.name}: done")
    return build_row(spec, settings, run_dir)


def write_summary(path: Path, settings: Settings, rows: list[dict], machine: dict) -> None:
    summary = {
        "machine": machine,
        "settings": {
            "split": str(settings.split_dir),
            "unlabelled": str(settings.unlabelled) if settings.unlabelled else None,
            "iterations": settings.iterations,
            "batch_size": settings.batch_size,
            "image_size": list(settings.image_size),
            "device": settings.device,
            "model_from": settings.model_from,
            "width": settings.width,
            "seed": settings.seed,
            "threads_per_job": settings.threads_per_job,
            "extra_train_args": list(settings.extra_train_args),
            **settings.extra,
        },
        "runs": rows,
    }
    with atomic_write(path) as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")


def run_all(
    specs: list[RunSpec],
    settings: Settings,
    jobs: int,
    say: Callable[[str], None],
    machine: dict | None = None,
) -> list[dict]:
    """Run every spec, `jobs` at a time; returns the rows (in `specs` order) and keeps
    RESULTS_DIR/summary.json up to date."""
    settings.results_dir.mkdir(parents=True, exist_ok=True)
    machine = machine or describe_machine()
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    free_slots: queue.Queue[int] = queue.Queue()
    slots = core_slots(jobs, settings.threads_per_job, cores)
    for slot in range(jobs):
        free_slots.put(slot)
    rows: dict[str, dict] = {}
    lock = threading.Lock()

    def work(spec: RunSpec) -> None:
        slot = free_slots.get()
        try:
            row = execute_run(spec, settings, slots[slot], say)
        except Exception as error:  # noqa: BLE001 (one broken run must not stop the others)
            row = {"run": spec.name, "spec": spec.spec, "method": spec.method,
                   "fraction": spec.fraction, "ablations": list(spec.ablations),
                   "status": "failed", "reason": f"{type(error).__name__}: {error}"}  # fmt: skip
        finally:
            free_slots.put(slot)
        with lock:
            rows[spec.name] = row
            ordered = [rows[s.name] for s in specs if s.name in rows]
            write_summary(settings.results_dir / SUMMARY_FILE, settings, ordered, machine)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(work, spec) for spec in specs]:
            future.result()
    return [rows[spec.name] for spec in specs]


def _image_size(text: str) -> int:
    value = int(text)
    if value <= 0 or value % 16:
        raise argparse.ArgumentTypeError(f"image sizes must be positive multiples of 16: {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--split", type=Path, required=True, help="folder made by make_split.py")
    add("--unlabelled", type=Path, help="unlabelled frames for the semi-supervised methods")
    add(
        "--unlabelled-csv",
        type=Path,
        help="their pixel-size CSV, recorded in the summary (training needs no unlabelled "
        "pixel size; a CSV named after the folder is found beside it anyway)",
    )
    add("--runs", required=True, help='e.g. "supervised@0.1,ersr@0.1,ersr@0.1:no-filter"')
    add("--iterations", type=int, required=True)
    add("--batch-size", type=int, required=True)
    add("--image-size", type=_image_size, nargs=2, required=True, metavar=("H", "W"))
    add("--device", choices=("auto", "cpu", "cuda"), default="cuda", help="training device")
    add("--eval-device", choices=("auto", "cpu", "cuda"), default="auto")
    add(
        "--model-from",
        choices=MODEL_CHOICES,
        default="best",
        help="evaluate the trainer's model.onnx (its best checkpoint, chosen on the same val "
        "frames: slightly optimistic) or the last checkpoint (default best)",
    )
    add("--jobs", type=int, default=1, help="runs at the same time (default 1)")
    add("--threads-per-job", type=int, help="CPU threads per run (default: cores / jobs)")
    add("--width", type=int, help="U-Net width passed to train (default: train's)")
    add("--seed", type=int, default=0)
    add("--run-timeout", type=float, metavar="S", help="stop a training after S seconds")
    add(
        "--extra-train-args",
        default="",
        help="more train arguments for every run, one string: --extra-train-args='--set lr=0.01'",
    )
    add("--hc-studio", default="", help="the hc-studio command (default: this Python's)")
    add("--out", type=Path, required=True, metavar="RESULTS_DIR")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    for side in ("train", "val"):
        folder, csv_path = args.split / side, args.split / f"{side}_pixel_size.csv"
        if not folder.is_dir() or not csv_path.is_file():
            raise ValueError(f"{args.split}: no {side}/ or {csv_path.name}; run make_split.py")
    if args.unlabelled is not None and not args.unlabelled.is_dir():
        raise ValueError(f"{args.unlabelled}: not a folder")
    jobs = max(1, args.jobs)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.threads_per_job or max(1, (cores or 1) // jobs)
    return Settings(
        split_dir=args.split,
        results_dir=args.out,
        iterations=args.iterations,
        batch_size=args.batch_size,
        image_size=tuple(args.image_size),
        device=args.device,
        eval_device=args.eval_device,
        model_from=args.model_from,
        unlabelled=args.unlabelled,
        unlabelled_csv=args.unlabelled_csv,
        width=args.width,
        seed=args.seed,
        threads_per_job=threads,
        extra_train_args=tuple(shlex.split(args.extra_train_args)),
        hc_studio=tuple(shlex.split(args.hc_studio)) or Settings.hc_studio,
        run_timeout_s=args.run_timeout,
        extra={
            "jobs": jobs,
            "eval_device": args.eval_device,
            "unlabelled_csv": str(args.unlabelled_csv) if args.unlabelled_csv else None,
            "run_timeout_s": args.run_timeout,
        },
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        specs = parse_runs(args.runs)
        settings = settings_from_args(args)
    except ValueError as error:
        print(f"accuracy: {error}", file=sys.stderr)
        return 2

    def say(message: str) -> None:
        # One write per line: the runs' threads report at the same moments.
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
        sys.stderr.flush()

    rows = run_all(specs, settings, settings.extra["jobs"], say)
    failed = [row for row in rows if row["status"] != "ok"]
    for row in failed:
        say(f"{row['run']}: FAILED: {row['reason']}")
    say(f"{len(rows) - len(failed)} of {len(rows)} runs ok -> {args.out / SUMMARY_FILE}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
