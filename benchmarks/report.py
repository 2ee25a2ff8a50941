"""Turn an accuracy.py RESULTS_DIR into the markdown tables of docs/benchmarks.md.

Reproduces: the accuracy table (method, labelled %, Dice, IoU, HD95, ASD and mean absolute HC
difference, each mean ± std over the held-out frames, HC p95, frames, iterations, image size,
training wall time), the ablation table (each ablated run beside its full method at the same
labelled fraction), and the winner per labelled fraction, with the paired difference of absolute
HC error to the runner-up and its 95 % bootstrap interval over frames, so that a win smaller than
the frame-to-frame noise reads as such.

    python benchmarks/report.py RESULTS_DIR [--machine "..."] --out-md FILE
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from accuracy import format_percent
from hc_studio.core.atomic import atomic_write
from machine_info import machine_line

METHOD_ORDER = ("supervised", "mean-teacher", "ersr")
DASH = "–"
BOOTSTRAP_RESAMPLES = 2000
MAIN_HEADERS = (
    "method",
    "labelled %",
    "Dice %",
    "IoU %",
    "HD95 mm",
    "ASD mm",
    "HC MAE mm",
    "HC p95 mm",
    "frames",
    "iterations",
    "image size",
    "wall time",
)
ABLATION_HEADERS = (
    "run",
    "labelled %",
    "Dice %",
    "HD95 mm",
    "HC MAE mm",
    "Δ Dice (points)",
    "Δ HC MAE mm",
)
MODEL_NOTES = {
    "best": "Each model is its run's best checkpoint, chosen on these same held-out frames "
    "(about ten validations per run), which flatters every method a little.",
    "last": "Each model is its run's last checkpoint (not chosen on the held-out frames).",
}
WINNER_HEADERS = (
    "labelled %",
    "best HC MAE",
    "runner-up",
    "paired Δ |HC diff| mm (95 % CI)",
    "best Dice",
)


# --- number formatting -----------------------------------------------------------------------


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def mean_std(stats: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    """`{"mean": m, "std": s}` -> "m ± s" (times `scale`, `digits` decimals); – when absent."""
    if not stats or not _finite(stats.get("mean")):
        return DASH
    text = f"{stats['mean'] * scale:.{digits}f}"
    if _finite(stats.get("std")):
        text += f" ± {stats['std'] * scale:.{digits}f}"
    return text


def number(value: object, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if _finite(value) else DASH


def format_duration(seconds: object) -> str:
    """45 -> "45 s", 750 -> "12.5 min", 3720 -> "1 h 02 min"; – when unknown."""
    if not _finite(seconds):
        return DASH
    seconds = float(seconds)  # type: ignore[arg-type]
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def format_iterations(row: dict) -> str:
    done, planned = row.get("iterations"), row.get("iterations_planned")
    if done is None:
        return DASH
    if planned and done < planned:
        return f"{done}/{planned} (stopped)"
    return str(done)


def format_frames(row: dict) -> str:
    frames = row.get("frames")
    if frames is None:
        return DASH
    missing = row.get("no_ellipse") or 0
    return f"{frames} ({missing} no ellipse)" if missing else str(frames)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; `|` inside cells is escaped."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, rows)])


# --- rows ------------------------------------------------------------------------------------


def _metric(row: dict, name: str) -> dict | None:
    return (row.get("metrics") or {}).get(name)


def _method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def sort_runs(runs: list[dict]) -> list[dict]:
    """By labelled fraction, then method (supervised, mean-teacher, ersr, others), then name."""
    return sorted(runs, key=lambda r: (r["fraction"], _method_rank(r["method"]), r["run"]))


def is_ok(row: dict) -> bool:
    return row.get("status") == "ok"


def main_table_row(row: dict) -> list[str]:
    head = [row["method"], format_percent(row["fraction"])]
    if not is_ok(row):
        return [*head, f"failed: {row.get('reason', '')}", *[DASH] * 9]
    height, width = row.get("image_size") or (None, None)
    hc = _metric(row, "hc_abs_diff_mm")
    return [
        *head,
        mean_std(_metric(row, "dice"), 100),
        mean_std(_metric(row, "iou"), 100),
        mean_std(_metric(row, "hd95_mm")),
        mean_std(_metric(row, "asd_mm")),
        mean_std(hc),
        number((hc or {}).get("p95")),
        format_frames(row),
        format_iterations(row),
        f"{height}×{width}" if height else DASH,
        format_duration(row.get("train_wall_s")),
    ]


def results_table(runs: list[dict]) -> str:
    main = [row for row in sort_runs(runs) if not row.get("ablations")]
    return markdown_table(MAIN_HEADERS, [main_table_row(row) for row in main])


def _difference(row: dict, reference: dict | None, metric: str, scale: float) -> str:
    if reference is None or not (is_ok(row) and is_ok(reference)):
        return DASH
    mine, theirs = _metric(row, metric) or {}, _metric(reference, metric) or {}
    if not (_finite(mine.get("mean")) and _finite(theirs.get("mean"))):
        return DASH
    return f"{(mine['mean'] - theirs['mean']) * scale:+.2f}"


def ablation_table(runs: list[dict]) -> str | None:
    """Each ablated run after its full method (same method and fraction); Δ = ablated - full.
    None when there is no ablated run."""
    ablated = [row for row in sort_runs(runs) if row.get("ablations")]
    if not ablated:
        return None
    full = {(r["method"], r["fraction"]): r for r in runs if not r.get("ablations")}
    rows, shown = [], set()
    for row in ablated:
        reference = full.get((row["method"], row["fraction"]))
        if reference is not None and reference["run"] not in shown:
            shown.add(reference["run"])
            rows.append(_ablation_cells(reference, None, "full"))
        rows.append(_ablation_cells(row, reference, " + ".join(row["ablations"])))
    return markdown_table(ABLATION_HEADERS, rows)


def _ablation_cells(row: dict, reference: dict | None, label: str) -> list[str]:
    name = f"{row['method']} ({label})"
    if not is_ok(row):
        return [name, format_percent(row["fraction"]), f"failed: {row.get('reason', '')}"] + [
            DASH
        ] * 4
    return [
        name,
        format_percent(row["fraction"]),
        mean_std(_metric(row, "dice"), 100),
        mean_std(_metric(row, "hd95_mm")),
        mean_std(_metric(row, "hc_abs_diff_mm")),
        _difference(row, reference, "dice", 100) if reference else DASH,
        _difference(row, reference, "hc_abs_diff_mm", 1) if reference else DASH,
    ]


# --- winners ---------------------------------------------------------------------------------


def read_per_frame(path: Path, column: str = "hc_abs_diff_mm") -> dict[str, float]:
    """{file: value} of one per-frame CSV column, frames without a finite value left out."""
    values: dict[str, float] = {}
    try:
        with path.open(newline="") as handle:
            for record in csv.DictReader(handle):
                try:
                    value = float(record.get(column) or "nan")
                except ValueError:
                    continue
                if math.isfinite(value):
                    values[record["file"]] = value
    except OSError:
        return {}
    return values


def paired_difference(
    first: dict[str, float], second: dict[str, float], seed: int = 0
) -> tuple[float, float, float, int] | None:
    """(mean of first - second over the shared frames, 2.5 % and 97.5 % bootstrap bounds, n).

    None when fewer than two frames have both values.
    """
    shared = sorted(first.keys() & second.keys())
    if len(shared) < 2:
        return None
    differences = np.array([first[name] - second[name] for name in shared])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), size=(BOOTSTRAP_RESAMPLES, len(differences)))
    means = differences[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(differences.mean()), float(low), float(high), len(shared)


def _best(rows: list[dict], metric: str, lowest: bool) -> list[dict]:
    scored = [r for r in rows if is_ok(r) and _finite((_metric(r, metric) or {}).get("mean"))]
    return sorted(scored, key=lambda r: _metric(r, metric)["mean"] * (1 if lowest else -1))


def _per_frame_path(row: dict, results_dir: Path) -> Path:
    return results_dir / row["run"] / row.get("per_frame_file", "per_frame.csv")


def winners_table(runs: list[dict], results_dir: Path) -> str:
    """Per labelled fraction (full methods only): lowest mean absolute HC difference, the
    runner-up and the paired difference to it, and the highest Dice."""
    lines = []
    main = [row for row in runs if not row.get("ablations")]
    for fraction in sorted({row["fraction"] for row in main}):
        candidates = [row for row in main if row["fraction"] == fraction]
        by_hc, by_dice = _best(candidates, "hc_abs_diff_mm", True), _best(candidates, "dice", False)
        best = by_hc[0]["method"] if by_hc else DASH
        runner_up, paired = DASH, DASH
        if len(by_hc) >= 2:
            runner_up = by_hc[1]["method"]
            result = paired_difference(
                read_per_frame(_per_frame_path(by_hc[0], results_dir)),
                read_per_frame(_per_frame_path(by_hc[1], results_dir)),
            )
            if result is not None:
                mean, low, high, n = result
                verdict = "" if high < 0 else ", within noise"
                paired = f"{mean:+.2f} ({low:+.2f} to {high:+.2f}), {n} frames{verdict}"
        dice = f"{by_dice[0]['method']}" if by_dice else DASH
        lines.append([format_percent(fraction), best, runner_up, paired, dice])
    return markdown_table(WINNER_HEADERS, lines)


# --- report ----------------------------------------------------------------------------------


def render_report(summary: dict, results_dir: Path, machine: str | None = None) -> str:
    """The whole markdown report of one summary.json."""
    settings = summary.get("settings", {})
    runs = summary.get("runs", [])
    machine = machine or machine_line(summary.get("machine") or {})
    parts = [
        "## HC18 held-out accuracy",
        "",
        f"Machine: {machine}.",
        f"Split: `{settings.get('split')}`; unlabelled frames: `{settings.get('unlabelled')}`; "
        f"batch size {settings.get('batch_size')}, seed {settings.get('seed')}, "
        f"{settings.get('jobs', 1)} run(s) at a time with {settings.get('threads_per_job')} "
        "CPU thread(s) each (wall times include that sharing).",
        "",
        "Mean ± standard deviation over the held-out frames; Dice and IoU in %; HC MAE is the mean "
        "absolute difference between the measured and the reference HC. "
        + MODEL_NOTES.get(settings.get("model_from", "best"), ""),
        "",
        results_table(runs),
        "",
    ]
    ablations = ablation_table(runs)
    if ablations:
        parts += ["### Ablations", "", "Δ = ablated − full.", "", ablations, ""]
    parts += [
        "### Best method per labelled fraction",
        "",
        "Paired Δ: per-frame absolute HC difference of the best minus the runner-up, mean over "
        "the frames both measured, with a 95 % bootstrap interval.",
        "",
        winners_table(runs, results_dir),
        "",
    ]
    return "\n".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results_dir", type=Path, metavar="RESULTS_DIR")
    parser.add_argument("--machine", help="machine description (default: from summary.json)")
    parser.add_argument("--out-md", type=Path, required=True, metavar="FILE")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary_path = args.results_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"report: {summary_path}: cannot read ({error})", file=sys.stderr)
        return 2
    text = render_report(summary, args.results_dir, args.machine)
    with atomic_write(args.out_md) as handle:
        handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
