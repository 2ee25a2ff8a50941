"""benchmarks/report.py: number formatting, the tables, and the paired comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import report


def stats(mean: float, std: float, p95: float | None = None) -> dict:
    values = {"n": 10, "mean": mean, "std": std, "median": mean}
    return values if p95 is None else {**values, "p95": p95}


def run_row(method: str, fraction: float, hc_mae: float, dice: float, ablations=()) -> dict:
    name = "-".join([method, f"{fraction * 100:g}pct", *ablations])
    return {
        "run": name,
        "method": method,
        "fraction": fraction,
        "ablations": list(ablations),
        "status": "ok",
        "iterations": 2000,
        "iterations_planned": 2000,
        "image_size": [256, 384],
        "train_wall_s": 3725.0,
        "frames": 160,
        "no_ellipse": 0,
        "metrics": {
            "dice": stats(dice, 0.0123),
            "iou": stats(dice - 0.02, 0.02),
            "hd95_mm": stats(1.234, 0.5),
            "asd_mm": stats(0.4, 0.1),
            "hc_abs_diff_mm": stats(hc_mae, 1.5, p95=hc_mae * 3),
        },
    }


def test_mean_std_scales_rounds_and_dashes_missing_values() -> None:
    assert report.mean_std(stats(0.97123, 0.01034), scale=100) == "97.12 ± 1.03"
    assert report.mean_std(stats(2.005, 1.5), digits=1) == "2.0 ± 1.5"
    assert report.mean_std({"n": 0, "mean": None, "std": None}) == "–"
    assert report.mean_std(None) == "–"
    assert report.mean_std({"mean": float("nan"), "std": 1.0}) == "–"


def test_durations_and_iterations_read_naturally() -> None:
    assert report.format_duration(45) == "45 s"
    assert report.format_duration(750) == "12.5 min"
    assert report.format_duration(3725) == "1 h 02 min"
    assert report.format_duration(None) == "–"
    assert report.format_iterations({"iterations": 1500, "iterations_planned": 2000}) == (
        "1500/2000 (stopped)"
    )
    assert report.format_iterations({"iterations": 2000, "iterations_planned": 2000}) == "2000"


def test_markdown_table_escapes_pipes() -> None:
    table = report.markdown_table(["a", "b"], [["x|y", "1"]])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | 1 |"]


def test_results_table_sorts_by_fraction_then_method_and_formats_cells() -> None:
    runs = [
        run_row("ersr", 0.1, 2.5, 0.96),
        run_row("supervised", 1.0, 2.0, 0.97),
        run_row("supervised", 0.1, 3.0, 0.95),
        run_row("ersr", 0.1, 9.0, 0.90, ablations=("no-filter",)),
    ]
    lines = report.results_table(runs).splitlines()
    assert lines[0].startswith("| method | labelled % | Dice % |")
    body = [line.strip("| ").split(" | ") for line in lines[2:]]
    assert [(cells[0], cells[1]) for cells in body] == [
        ("supervised", "10"),
        ("ersr", "10"),
        ("supervised", "100"),
    ]  # the ablated run is not in the main table
    assert body[1][2] == "96.00 ± 1.23" and body[1][4] == "1.23 ± 0.50"
    assert body[1][6] == "2.50 ± 1.50" and body[1][7] == "7.50"
    assert body[1][9:] == ["2000", "256×384", "1 h 02 min"]


def test_failed_run_row_says_why_and_keeps_the_column_count() -> None:
    failed = {"run": "x", "method": "ersr", "fraction": 0.1, "status": "failed", "reason": "OOM"}
    cells = report.main_table_row(failed)
    assert len(cells) == len(report.MAIN_HEADERS)
    assert cells[2] == "failed: OOM" and set(cells[3:]) == {"–"}


def test_ablation_table_puts_the_full_method_first_with_differences() -> None:
    runs = [
        run_row("ersr", 0.1, 2.5, 0.96),
        run_row("ersr", 0.1, 3.25, 0.95, ablations=("no-filter",)),
        run_row("ersr", 0.1, 2.0, 0.955, ablations=("no-symmetry",)),
    ]
    lines = report.ablation_table(runs).splitlines()[2:]
    assert lines[0].startswith("| ersr (full) | 10 |")
    assert lines[1].startswith("| ersr (no-filter) |") and lines[1].endswith("| -1.00 | +0.75 |")
    assert lines[2].endswith("| -0.50 | -0.50 |")
    assert report.ablation_table([run_row("ersr", 0.1, 2.5, 0.96)]) is None


def test_paired_difference_of_a_constant_shift_is_exact() -> None:
    first = {f"{i}.png": 1.0 + i for i in range(20)}
    second = {name: value + 0.5 for name, value in first.items()}
    second["extra.png"] = 3.0  # only in one run: not paired
    mean, low, high, n = report.paired_difference(first, second)
    assert n == 20
    assert (
        mean == pytest.approx(-0.5) and low == pytest.approx(-0.5) and high == pytest.approx(-0.5)
    )
    assert report.paired_difference({"a": 1.0}, {"a": 2.0}) is None


def write_per_frame(path: Path, values: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["file,hc_abs_diff_mm", *(f"{name},{value}" for name, value in values.items())]
    path.write_text("\n".join(lines + ["missing.png,"]) + "\n")


def test_winners_table_names_best_and_judges_the_margin(tmp_path: Path) -> None:
    rng = __import__("numpy").random.default_rng(0)
    base = {f"{i:03d}_HC.png": float(v) for i, v in enumerate(rng.uniform(0, 5, 60))}
    runs = [
        run_row("supervised", 0.1, 3.0, 0.95),
        run_row("ersr", 0.1, 2.0, 0.96),
        run_row("supervised", 1.0, 2.0, 0.97),
        run_row("ersr", 1.0, 1.99, 0.96),
    ]
    write_per_frame(
        tmp_path / "supervised-10pct" / "per_frame.csv", {k: v + 1 for k, v in base.items()}
    )
    write_per_frame(tmp_path / "ersr-10pct" / "per_frame.csv", base)
    noisy = {k: v + float(rng.normal(0, 1)) for k, v in base.items()}
    write_per_frame(tmp_path / "supervised-100pct" / "per_frame.csv", noisy)
    write_per_frame(tmp_path / "ersr-100pct" / "per_frame.csv", base)
    lines = report.winners_table(runs, tmp_path).splitlines()[2:]
    assert lines[0].startswith("| 10 | ersr | supervised | -1.00 (-1.00 to -1.00), 60 frames |")
    assert lines[0].endswith("| ersr |")
    assert "within noise" in lines[1] and lines[1].endswith("| supervised |")


def test_main_writes_the_markdown_report(tmp_path: Path) -> None:
    summary = {
        "machine": {"cpu": "Test CPU", "cores": 4, "gpus": ["Test GPU"]},
        "settings": {"split": "split", "batch_size": 8, "seed": 0, "model_from": "last"},
        "runs": [run_row("supervised", 0.1, 3.0, 0.95), run_row("ersr", 0.1, 2.0, 0.96)],
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "report.md"
    assert report.main([str(tmp_path), "--out-md", str(out)]) == 0
    text = out.read_text()
    assert "Test CPU (4 cores usable), Test GPU" in text
    assert "last checkpoint" in text
    assert "| ersr | 10 | 96.00 ± 1.23 |" in text
    assert "### Ablations" not in text
    assert report.main([str(tmp_path / "missing"), "--out-md", str(out)]) == 2
