"""`hc-studio measure` end to end on phantom PNGs with the tiny ONNX model."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core import inference
from hc_studio.core.biometry import biometry_from_ellipse
from hc_studio.core.cli import main
from hc_studio.core.export import HC18_COLUMNS, read_records_csv
from hc_studio.core.phantom import make_phantom
from hc_studio.core.spacing import Spacing

PIXEL_MM = 0.14


def write_png(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    return path


@pytest.fixture
def good_folder(tmp_path: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    phantoms = {f"good{seed}.png": make_phantom(seed=seed) for seed in (4, 5)}
    for name, phantom in phantoms.items():
        write_png(folder / name, phantom.image)
    return folder, phantoms


def test_good_truncated_and_black_frames(good_folder, tiny_onnx_model, tmp_path, capsys) -> None:
    folder, phantoms = good_folder
    whole = cv2.imencode(".png", np.full((270, 400), 100, np.uint8))[1].tobytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    write_png(folder / "black.png", np.zeros((270, 400)))
    out, hc18, masks = tmp_path / "m.csv", tmp_path / "hc18.csv", tmp_path / "masks"
    argv = ["measure", str(folder), "--model", str(tiny_onnx_model), "--device", "cpu"]
    argv += ["--pixel-size", str(PIXEL_MM), "--out", str(out), "--hc18-out", str(hc18)]
    argv += ["--masks-out", str(masks)]

    assert main(argv) == 1  # some frames gave no measurement

    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "black.png  no head found" in err
    truncated_lines = [line for line in err.splitlines() if line.startswith(str(folder))]
    assert any("truncated.png: " in line for line in truncated_lines)
    assert "4 frame(s): 2 ok" in err
    records = {Path(record.file).name: record for record in read_records_csv(out)}
    spacing = Spacing.square(PIXEL_MM, "user")
    for name, phantom in phantoms.items():
        truth = biometry_from_ellipse(phantom.ellipse_px, spacing)
        assert records[name].status == "ok"
        assert records[name].hc == pytest.approx(truth.hc, rel=0.01)
        assert f"{name}  HC {records[name].hc:.1f} mm" in err
        mask = cv2.imread(str(masks / f"{Path(name).stem}_mask.png"), cv2.IMREAD_GRAYSCALE)
        iou = ((mask > 0) & phantom.mask).sum() / ((mask > 0) | phantom.mask).sum()
        assert iou > 0.97
    assert records["truncated.png"].status_text.startswith("error: ")
    assert sorted(p.name for p in masks.iterdir()) == ["good4_mask.png", "good5_mask.png"]
    with hc18.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == HC18_COLUMNS and {row["filename"] for row in rows} == set(phantoms)


def test_all_good_exits_0_with_pixel_csv(good_folder, tiny_onnx_model, tmp_path) -> None:
    folder, phantoms = good_folder
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("filename,pixel size(mm)\n" + "".join(f"{n},0.2\n" for n in phantoms))
    out = tmp_path / "m.csv"
    argv = ["measure", str(folder / "good4.png"), str(folder / "good5.png")]
    argv += ["--model", str(tiny_onnx_model), "--pixel-csv", str(sizes), "--out", str(out)]
    assert main(argv) == 0
    assert {record.spacing.source for record in read_records_csv(out)} == {"csv"}


def test_without_a_model_the_message_says_what_to_do(good_folder, monkeypatch, capsys) -> None:
    folder, _ = good_folder
    monkeypatch.setattr(inference, "default_model_path", lambda: None)
    assert main(["measure", str(folder), "--out", str(folder / "m.csv")]) == 2
    assert capsys.readouterr().err.startswith("hc-studio: error: no model installed")


def test_empty_folder_and_bad_model_are_usage_errors(tmp_path, tiny_onnx_model, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "m.csv")
    assert main(["measure", str(empty), "--model", str(tiny_onnx_model), "--out", out]) == 2
    assert "no frame files found" in capsys.readouterr().err
    write_png(tmp_path / "f.png", make_phantom().image)
    not_a_model = tmp_path / "model.onnx"
    not_a_model.write_text("nonsense")
    assert (
        main(["measure", str(tmp_path / "f.png"), "--model", str(not_a_model), "--out", out]) == 2
    )
    assert "model.onnx: not a usable ONNX model" in capsys.readouterr().err
