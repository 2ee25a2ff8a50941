"""`hc-studio evaluate` on a phantom HC18-style folder with the tiny ONNX model."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core import cli
from hc_studio.core.biometry import biometry_from_ellipse
from hc_studio.core.commands import evaluate
from hc_studio.core.phantom import make_phantom

SHAPE = (135, 200)
PIXEL_MM = 0.4  # phantom heads of 100-150 mm: inside the plausible fetal HC range
GOOD = ("001_HC.png", "002_HC.png", "003_HC.png")


def write_png(path: Path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def hc18_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three phantoms, one frame without a head, one annotation that is not an ellipse."""
    folder = tmp_path_factory.mktemp("phantom_hc18")
    names = []
    for seed, name in enumerate(GOOD):
        phantom = make_phantom(SHAPE, seed=seed)
        write_png(folder / name, phantom.image)
        write_png(folder / name.replace(".png", "_Annotation.png"), phantom.outline)
        names.append(name)
    head = make_phantom(SHAPE, seed=7)
    write_png(folder / "004_HC.png", np.full(SHAPE, 0.05))  # nothing to segment
    write_png(folder / "004_HC_Annotation.png", head.outline)
    write_png(folder / "005_HC.png", head.image)
    write_png(folder / "005_HC_Annotation.png", np.zeros(SHAPE))  # empty annotation
    with (folder / "pixel_size.csv").open("w") as handle:
        handle.write("filename,pixel size(mm)\n")
        for name in [*names, "004_HC.png", "005_HC.png"]:
            handle.write(f"{name},{PIXEL_MM}\n")
    return folder


@pytest.fixture(scope="module")
def evaluated(hc18_like: Path, tiny_onnx_model: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("evaluate_out")
    argv = ["evaluate", str(hc18_like), "--model", str(tiny_onnx_model), "--device", "cpu"]
    argv += ["--json", str(out / "summary.json"), "--per-frame", str(out / "frames.csv")]
    code = cli.main(argv)
    report = json.loads((out / "summary.json").read_text())
    with (out / "frames.csv").open(newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    return code, report, rows, out


def test_summary_has_every_metric_with_its_statistics(evaluated) -> None:
    code, report, _, _ = evaluated
    assert code == evaluate.EXIT_SOME_FAILED  # one frame failed, one was not imported
    assert report["frames"] == 4 and report["model"] == "tiny-threshold"
    for metric in ("dice", "iou", "hd95_mm", "asd_mm", "hc_abs_diff_mm", "hc_diff_mm"):
        assert {"mean", "std", "median", "n"} <= report[metric].keys()
    assert "p95" in report["hc_abs_diff_mm"]
    assert report["hc_abs_diff_mm"]["n"] == 3 and report["dice"]["n"] == 4


def test_phantoms_are_segmented_and_measured_accurately(evaluated) -> None:
    _, _, rows, _ = evaluated
    for name in GOOD:
        row = rows[name]
        assert row["status"] == "ok"
        assert float(row["dice"]) > 0.97 and float(row["ellipse_dice"]) > 0.97
        assert float(row["hd95_mm"]) < 3 * PIXEL_MM
        assert abs(float(row["hc_diff_mm"])) < 1.5
        assert float(row["hc_abs_diff_mm"]) == pytest.approx(abs(float(row["hc_diff_mm"])))


def test_reference_hc_is_the_annotation_ellipse(hc18_like: Path, evaluated) -> None:
    from hc_studio.core.ellipse import fit_outline_mask
    from hc_studio.core.spacing import Spacing

    _, _, rows, _ = evaluated
    outline = cv2.imread(str(hc18_like / "001_HC_Annotation.png"), cv2.IMREAD_GRAYSCALE) > 0
    expected = biometry_from_ellipse(fit_outline_mask(outline), Spacing.square(PIXEL_MM)).hc
    assert float(rows["001_HC.png"]["hc_ref_mm"]) == pytest.approx(expected, abs=1e-3)


def test_frame_without_a_head_is_a_failure_with_its_reason(evaluated) -> None:
    _, report, rows, _ = evaluated
    assert report["failures"] == [{"file": "004_HC.png", "reason": "no head found"}]
    row = rows["004_HC.png"]
    assert float(row["dice"]) == 0.0 and row["hc_pred_mm"] == "" and row["hc_diff_mm"] == ""
    assert row["hc_ref_mm"] != ""  # the reference exists; the prediction does not


def test_unusable_annotation_is_an_import_problem(evaluated) -> None:
    _, report, rows, _ = evaluated
    assert [p["file"] for p in report["import_problems"]] == ["005_HC_Annotation.png"]
    assert report["import_problems"][0]["problem"]
    assert "005_HC.png" not in rows


def test_statistics_match_the_per_frame_values(evaluated) -> None:
    _, report, rows, _ = evaluated
    dice = [float(row["dice"]) for row in rows.values()]
    assert report["dice"]["mean"] == pytest.approx(np.mean(dice), abs=1e-5)
    assert report["dice"]["median"] == pytest.approx(np.median(dice), abs=1e-5)
    hc_abs = [float(rows[name]["hc_abs_diff_mm"]) for name in GOOD]
    assert report["hc_abs_diff_mm"]["p95"] == pytest.approx(np.percentile(hc_abs, 95), abs=1e-4)


def test_outputs_are_written_without_leftover_temporary_files(evaluated) -> None:
    *_, out = evaluated
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "summary.json"]


def test_summarise_ignores_missing_and_infinite_values() -> None:
    stats = evaluate.summarise([1.0, None, 3.0, math.inf, 2.0], with_p95=True)
    assert stats == {
        "n": 3,
        "mean": 2.0,
        "std": pytest.approx(math.sqrt(2 / 3)),
        "median": 2.0,
        "p95": pytest.approx(2.9),
    }
    assert evaluate.summarise([None]) == {"n": 0, "mean": None, "std": None, "median": None}


def test_without_json_the_summary_goes_to_stdout(
    hc18_like: Path, tiny_onnx_model: Path, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    for name in ("001_HC.png", "001_HC_Annotation.png", "pixel_size.csv"):
        shutil.copy(hc18_like / name, folder / name)
    code = cli.main(["evaluate", str(folder), "--model", str(tiny_onnx_model), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == evaluate.EXIT_OK
    assert json.loads(captured.out)["frames"] == 1
    assert "[1/1] 001_HC.png" in captured.err and "1 frames: dice" in captured.err


def test_user_pixel_size_overrides_the_csv(hc18_like: Path, tiny_onnx_model: Path, tmp_path):
    out = tmp_path / "s.json"
    argv = ["evaluate", str(hc18_like), "--model", str(tiny_onnx_model), "--device", "cpu"]
    cli.main([*argv, "--pixel-size", str(2 * PIXEL_MM), "--json", str(out)])
    doubled = json.loads(out.read_text())
    cli.main([*argv, "--json", str(out)])
    plain = json.loads(out.read_text())
    assert doubled["hd95_mm"]["mean"] == pytest.approx(2 * plain["hd95_mm"]["mean"], rel=1e-6)


def test_missing_model_fails_with_a_clear_message(hc18_like: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("hc_studio.core.inference.default_model_path", lambda: None)
    assert cli.main(["evaluate", str(hc18_like)]) == cli.EXIT_USAGE
    assert "no model given and none is installed" in capsys.readouterr().err


def test_folder_without_pairs_fails_clearly(tmp_path: Path, tiny_onnx_model: Path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    code = cli.main(["evaluate", str(tmp_path), "--model", str(tiny_onnx_model)])
    assert code == cli.EXIT_USAGE
    assert "error:" in capsys.readouterr().err


def test_importing_the_command_loads_neither_torch_nor_onnxruntime() -> None:
    code = (
        "import sys, hc_studio.core.commands.evaluate as m; "
        "assert hasattr(m, 'HELP') and hasattr(m, 'run'); "
        "heavy = {'torch', 'onnxruntime'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.hc18
def test_reference_hc_on_hc18_equals_the_csv(hc18_dir: Path, tiny_onnx_model: Path, tmp_path):
    names = ["001_HC.png", "010_2HC.png", "102_HC.png"]
    folder = tmp_path / "hc18"
    folder.mkdir()
    for name in names:
        shutil.copy(hc18_dir / "training_set" / name, folder / name)
        annotation = name.replace(".png", "_Annotation.png")
        shutil.copy(hc18_dir / "training_set" / annotation, folder / annotation)
    csv_path = hc18_dir / "training_set_pixel_size_and_HC.csv"
    with csv_path.open(newline="") as handle:
        truth = {row[0]: float(row[2]) for row in list(csv.reader(handle))[1:] if row}
    per_frame = tmp_path / "frames.csv"
    argv = ["evaluate", str(folder), "--model", str(tiny_onnx_model), "--device", "cpu"]
    cli.main([*argv, "--pixel-csv", str(csv_path), "--per-frame", str(per_frame)])
    with per_frame.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    for row in rows:
        assert float(row["hc_ref_mm"]) == pytest.approx(truth[row["file"]], abs=0.1)
