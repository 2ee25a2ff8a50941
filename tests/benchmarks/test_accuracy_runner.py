"""benchmarks/accuracy.py: run specs, command lines, and the runner (with a stand-in command)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import accuracy
import pytest

# A stand-in for `hc-studio`: `train` writes events and a model (method "broken" fails with an
# error event), `evaluate` writes a summary JSON and a per-frame CSV, `export` writes a model.
# Every call appends its words to calls.log beside this script.
FAKE_HC_STUDIO = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    args = sys.argv[1:]
    with open(Path(__file__).with_name("calls.log"), "a") as log:
        log.write(" ".join(args) + "\\n")

    def value(flag):
        return args[args.index(flag) + 1]

    if args[0] == "train":
        out = Path(value("--out"))
        out.mkdir(parents=True, exist_ok=True)
        events = out / "events.jsonl"
        with events.open("a") as handle:
            handle.write(json.dumps({"event": "start", "counts": {"labelled": 3}}) + "\\n")
            if value("--method") == "broken":
                handle.write(json.dumps({"event": "error", "message": "no GPU here"}) + "\\n")
                sys.exit(1)
            handle.write(json.dumps({"event": "done", "iteration": 4}) + "\\n")
        (out / "checkpoints").mkdir(exist_ok=True)
        (out / "checkpoints" / "last.pt").write_text("ckpt")
        (out / "model.onnx").write_text("onnx")
    elif args[0] == "export":
        Path(value("--out")).write_text("onnx")
    elif args[0] == "evaluate":
        stats = {"n": 2, "mean": 1.5, "std": 0.5, "median": 1.5}
        report = {"frames": 2, "dice": stats, "hc_abs_diff_mm": {**stats, "p95": 2.0},
                  "failures": [], "model": value("--model")}
        Path(value("--json")).write_text(json.dumps(report))
        Path(value("--per-frame")).write_text("file,hc_abs_diff_mm\\na.png,1\\nb.png,2\\n")
    """
)


def test_parse_run_spec_reads_method_fraction_and_ablations() -> None:
    spec = accuracy.parse_run_spec(" ersr@0.1:no-filter+no-symmetry ")
    assert spec == accuracy.RunSpec("ersr", 0.1, ("no-filter", "no-symmetry"))
    assert spec.name == "ersr-10pct-no-filter-no-symmetry"
    assert spec.spec == "ersr@0.1:no-filter+no-symmetry"
    assert accuracy.parse_run_spec("supervised@1.0").name == "supervised-100pct"
    assert accuracy.parse_run_spec("mean-teacher@0.025").name == "mean-teacher-2.5pct"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ersr", "METHOD@FRACTION"),
        ("ersr@ten", "not a number"),
        ("ersr@0", "in \\(0, 1\\]"),
        ("ersr@1.5", "in \\(0, 1\\]"),
        ("ersr@0.1:no-teacher", "unknown ablation 'no-teacher'"),
    ],
)
def test_parse_run_spec_rejects_bad_entries(text: str, message: str) -> None:
    with pytest.raises(accuracy.RunSpecError, match=message):
        accuracy.parse_run_spec(text)


def test_parse_runs_keeps_order_and_rejects_repeats() -> None:
    specs = accuracy.parse_runs("supervised@0.1, ersr@0.1,ersr@0.1:no-filter,")
    assert [s.name for s in specs] == ["supervised-10pct", "ersr-10pct", "ersr-10pct-no-filter"]
    with pytest.raises(accuracy.RunSpecError, match="twice"):
        accuracy.parse_runs("ersr@0.1,ersr@0.10")


def make_settings(tmp_path: Path, **changes) -> accuracy.Settings:
    split = tmp_path / "split"
    for side in ("train", "val"):
        (split / side).mkdir(parents=True, exist_ok=True)
        (split / f"{side}_pixel_size.csv").write_text("filename,pixel size(mm)\n")
    values = dict(
        split_dir=split,
        results_dir=tmp_path / "results",
        iterations=4,
        batch_size=2,
        image_size=(32, 48),
        device="cpu",
        unlabelled=tmp_path / "unlabelled",
        width=8,
    )
    values.update(changes)
    return accuracy.Settings(**values)


def test_train_command_maps_fraction_ablations_and_unlabelled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_train_args=("--set", "lr=0.02"))
    run_dir = tmp_path / "run"
    ersr = accuracy.train_command(accuracy.parse_run_spec("ersr@0.1:no-filter"), settings, run_dir)
    words = " ".join(ersr)
    assert "--labeled-fraction 0.1" in words and "--method ersr" in words
    assert f"--labeled {settings.split_dir / 'train'}" in words
    assert f"--val {settings.split_dir / 'val'}" in words
    assert "--image-size 32 48" in words and "--width 8" in words
    assert "use_filter=false" in ersr and "--unlabeled" in ersr and "--resume" not in ersr
    assert ersr[-2:] == ["--set", "lr=0.02"]
    supervised = accuracy.train_command(accuracy.parse_run_spec("supervised@1"), settings, run_dir)
    assert "--unlabeled" not in supervised and "use_filter=false" not in supervised
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_text("x")
    assert "--resume" in accuracy.train_command(
        accuracy.parse_run_spec("ersr@0.1"), settings, run_dir
    )


def test_evaluate_command_scores_the_chosen_model_on_val(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    best = accuracy.evaluate_command(make_settings(tmp_path), run_dir)
    assert best[best.index("--model") + 1] == str(run_dir / "model.onnx")
    assert best[best.index("--json") + 1] == str(run_dir / "evaluation.json")
    last = accuracy.evaluate_command(make_settings(tmp_path, model_from="last"), run_dir)
    assert last[last.index("--model") + 1] == str(run_dir / "model_last.onnx")
    assert last[last.index("--per-frame") + 1] == str(run_dir / "per_frame_last.csv")


def test_core_slots_are_disjoint_or_absent() -> None:
    assert accuracy.core_slots(2, 3, range(8)) == [[0, 1, 2], [3, 4, 5]]
    assert accuracy.core_slots(3, 2, range(4)) == [None, None, None]


@pytest.fixture
def fake_settings(tmp_path: Path) -> accuracy.Settings:
    script = tmp_path / "fake_hc_studio.py"
    script.write_text(FAKE_HC_STUDIO)
    return make_settings(tmp_path, hc_studio=(sys.executable, str(script)))


def calls(settings: accuracy.Settings) -> list[str]:
    log = Path(settings.hc_studio[1]).with_name("calls.log")
    return log.read_text().splitlines() if log.exists() else []


def test_run_all_records_ok_and_failed_runs_in_summary(fake_settings: accuracy.Settings) -> None:
    specs = accuracy.parse_runs("supervised@0.5,broken@0.5,ersr@0.5:no-symmetry")
    rows = accuracy.run_all(specs, fake_settings, jobs=2, say=lambda _: None, machine={})
    assert [row["status"] for row in rows] == ["ok", "failed", "ok"]
    assert "no GPU here" in rows[1]["reason"] and rows[1]["reason"].startswith("training")
    assert rows[0]["iterations"] == 4 and rows[0]["frames"] == 2
    assert rows[0]["metrics"]["hc_abs_diff_mm"]["p95"] == 2.0
    assert rows[0]["image_size"] == [32, 48] and rows[0]["counts"] == {"labelled": 3}
    assert rows[0]["train_wall_s"] is not None and rows[0]["eval_wall_s"] is not None
    summary = json.loads((fake_settings.results_dir / "summary.json").read_text())
    assert [row["run"] for row in summary["runs"]] == [spec.name for spec in specs]
    assert summary["settings"]["iterations"] == 4


def test_run_all_resumes_skipping_evaluated_runs(fake_settings: accuracy.Settings) -> None:
    specs = accuracy.parse_runs("supervised@0.5,broken@0.5")
    accuracy.run_all(specs, fake_settings, jobs=1, say=lambda _: None, machine={})
    first = len(calls(fake_settings))
    assert first == 3  # train + evaluate, and the broken run's train
    rows = accuracy.run_all(specs, fake_settings, jobs=1, say=lambda _: None, machine={})
    again = calls(fake_settings)[first:]
    assert len(again) == 1 and again[0].startswith("train") and "--method broken" in again[0]
    assert rows[0]["status"] == "ok" and rows[0]["train_wall_s"] is not None


def test_finished_training_is_evaluated_without_training_again(
    fake_settings: accuracy.Settings,
) -> None:
    specs = accuracy.parse_runs("supervised@0.5")
    accuracy.run_all(specs, fake_settings, jobs=1, say=lambda _: None, machine={})
    (fake_settings.results_dir / specs[0].name / "evaluation.json").unlink()
    accuracy.run_all(specs, fake_settings, jobs=1, say=lambda _: None, machine={})
    assert [line.split()[0] for line in calls(fake_settings)] == ["train", "evaluate", "evaluate"]


def test_model_from_last_exports_then_evaluates_it(tmp_path: Path) -> None:
    script = tmp_path / "fake_hc_studio.py"
    script.write_text(FAKE_HC_STUDIO)
    settings = make_settings(tmp_path, hc_studio=(sys.executable, str(script)), model_from="last")
    rows = accuracy.run_all(
        accuracy.parse_runs("ersr@0.2"), settings, jobs=1, say=lambda _: None, machine={}
    )
    assert [line.split()[0] for line in calls(settings)] == ["train", "export", "evaluate"]
    assert rows[0]["status"] == "ok" and rows[0]["per_frame_file"] == "per_frame_last.csv"
    run_dir = settings.results_dir / "ersr-20pct"
    assert (run_dir / "evaluation_last.json").is_file()


def test_main_rejects_a_missing_split(tmp_path: Path, capsys) -> None:
    argv = ["--split", str(tmp_path / "nope"), "--runs", "ersr@0.1", "--iterations", "2"]
    argv += ["--batch-size", "2", "--image-size", "32", "48", "--out", str(tmp_path / "r")]
    assert accuracy.main(argv) == 2
    assert "run make_split.py" in capsys.readouterr().err
