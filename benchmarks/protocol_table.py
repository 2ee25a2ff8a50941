"""Print the markdown tables of docs/benchmarks.md's "Honest protocol" section from the JSON
written by `protocol_eval.py`.

    python benchmarks/protocol_table.py docs/results/protocol_v1_test.json [more.json ...]

Per file from `protocol_eval.py`: one row per model (the candidate, and the baseline when it
was scored beside it) with every figure and its 95 % patient-bootstrap interval, the paired
difference row, the HC error by pixel-size tercile, and the review flag's catch and share.
A file from `select_candidate.py` gives one row per candidate on validation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLUMNS = (
    ("dice", "Dice", 4),
    ("hd95_mm", "HD95 mm", 2),
    ("hc_abs_mean_mm", "mean \\|HC err\\| mm", 2),
    ("hc_abs_median_mm", "median mm", 2),
    ("hc_abs_p95_mm", "p95 mm", 2),
    ("bias_mm", "bias mm", 2),
    ("loa_low_mm", "BA low mm", 2),
    ("loa_high_mm", "BA high mm", 2),
)


def cell(interval: dict, digits: int, signed: bool = False) -> str:
    sign = "+" if signed else ""
    value, low, high = (f"{interval[k]:{sign}.{digits}f}" for k in ("value", "low", "high"))
    return f"{value} [{low}, {high}]"


def flag_cell(rates: dict | None) -> str:
    if not rates:
        return "–"
    return (
        f"{rates['large_errors_caught']}/{rates['large_errors']} caught, "
        f"{rates['flagged']}/{rates['frames']} flagged"
    )


def model_row(name: str, summary: dict) -> str:
    stats = summary["statistics"]
    cells = [cell(stats[key], digits) for key, _, digits in COLUMNS]
    flags = [flag_cell(summary.get("review_current")), flag_cell(summary.get("review_chosen"))]
    return "| " + " | ".join([name, *cells, *flags]) + " |"


def tables(report: dict) -> str:
    header = ["model", *(title for _, title, _ in COLUMNS), "flag now (>5 mm)", "flag chosen"]
    lines = [
        f"{report['side']}: {report['candidate']['frames']} frames of "
        f"{report['candidate']['patients']} patients; 95 % intervals from "
        f"{report['bootstrap']['draws']} patient resamples",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        model_row(Path(report["model"]).name, report["candidate"]),
    ]
    if report.get("baseline_summary"):
        lines.append(model_row(Path(report["baseline"]).name, report["baseline_summary"]))
        diff = report["candidate"]["difference_vs_baseline"]
        cells = [cell(diff[key], digits, signed=True) for key, _, digits in COLUMNS]
        lines.append("| " + " | ".join(["difference (paired)", *cells, "", ""]) + " |")
    lines += ["", "| model | " + " | ".join(_tercile_titles(report)) + " |"]
    lines.append("|" + " --- |" * (1 + len(report["candidate"]["by_pixel_tercile"])))
    summaries = [(Path(report["model"]).name, report["candidate"])]
    if report.get("baseline_summary"):
        summaries.append((Path(report["baseline"]).name, report["baseline_summary"]))
    for name, summary in summaries:
        cells = [cell(t["hc_abs_mean_mm"], 2) for t in summary["by_pixel_tercile"]]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def _tercile_titles(report: dict) -> list[str]:
    titles = []
    for tercile in report["candidate"]["by_pixel_tercile"]:
        low, high = tercile["pixel_mm_range"]
        span = (
            f"≤ {high:.3f}"
            if low is None
            else (f"> {low:.3f}" if high is None else f"{low:.3f}–{high:.3f}")
        )
        titles.append(f"pixel {span} mm ({tercile['frames']} frames)")
    return titles


def candidate_table(report: dict) -> str:
    """The validation scores of `select_candidate.py`, one row per candidate, the choice marked."""
    header = ["candidate (validation)", *(title for _, title, _ in COLUMNS[:5])]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in report["candidates"]:
        name = row["model"] + (" (chosen)" if row["model"] == report["chosen"] else "")
        cells = [cell(row[key], digits) for key, _, digits in COLUMNS[:5]]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+", metavar="JSON")
    args = parser.parse_args(argv)
    for path in args.reports:
        report = json.loads(path.read_text())
        print(candidate_table(report) if "candidates" in report else tables(report))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
