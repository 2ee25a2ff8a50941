"""`hc-studio measure` and pixel sizes: refused values, CSV scope, unused CSVs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.cli import main
from hc_studio.core.export import read_records_csv
from hc_studio.core.phantom import make_phantom


@pytest.fixture
def frame(tmp_path: Path) -> Path:
    path = tmp_path / "exam" / "frame.png"
    path.parent.mkdir()
    image = make_phantom(seed=4).image
    cv2.imwrite(str(path), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    return path


def measure(frame: Path, model: Path, out: Path, *options: str) -> int:
    return main(["measure", str(frame), "--model", str(model), "--out", str(out), *options])


@pytest.mark.parametrize("value", ["1e308", "5", "0.001", "0", "nan"])
def test_implausible_pixel_size_exits_2_without_measuring(
    frame, tiny_onnx_model, tmp_path, capsys, value
) -> None:
    out = tmp_path / "m.csv"
    with pytest.raises(SystemExit) as stopped:
        measure(frame, tiny_onnx_model, out, "--pixel-size", value)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "argument --pixel-size: pixel size" in err and "0.01-2 mm" in err
    assert "HC" not in err and not out.exists()


def test_csv_of_hc_values_is_refused_naming_its_columns(
    frame, tiny_onnx_model, tmp_path, capsys
) -> None:
    hc_csv = tmp_path / "hc.csv"
    hc_csv.write_text(f"filename,head circumference (mm)\n{frame.name},0.5\n")
    assert measure(frame, tiny_onnx_model, tmp_path / "m.csv", "--pixel-csv", str(hc_csv)) == 2
    err = capsys.readouterr().err
    assert "hc.csv: no pixel size column" in err and "'head circumference (mm)'" in err


def test_csv_calibrating_no_frame_is_reported(frame, tiny_onnx_model, tmp_path, capsys) -> None:
    other = tmp_path / "other.csv"
    other.write_text("filename,pixel size(mm)\nsomeone_else.png,0.1\n")
    out = tmp_path / "m.csv"
    assert measure(frame, tiny_onnx_model, out, "--pixel-csv", str(other)) == 0
    err = capsys.readouterr().err
    assert f"warning: {other}: calibrates none of the 1 file(s) measured" in err
    assert [r.spacing.source for r in read_records_csv(out)] == ["none"]


def test_csv_calibrates_the_folder_given_with_it(frame, tiny_onnx_model, tmp_path, capsys) -> None:
    sizes = tmp_path / "sizes.csv"  # beside the exam folder, as HC18 keeps it
    sizes.write_text(f"filename,pixel size(mm)\n{frame.name},0.14\n")
    out = tmp_path / "m.csv"
    assert (
        main(
            ["measure", str(frame.parent), "--model", str(tiny_onnx_model), "--out", str(out)]
            + ["--pixel-csv", str(sizes)]
        )
        == 0
    )
    assert "warning" not in capsys.readouterr().err
    (record,) = read_records_csv(out)
    assert record.spacing.source == "csv" and record.spacing.col_mm == 0.14


def test_measured_records_name_their_csv_row(frame, tiny_onnx_model, tmp_path) -> None:
    from hc_studio.core.inference import SegmentationEngine
    from hc_studio.core.measure import measure_paths
    from hc_studio.core.spacing import SpacingPolicy, read_pixel_table

    sizes = tmp_path / "sizes.csv"
    sizes.write_text(f"filename,pixel size(mm)\nunrelated.png,0.2\n{frame.name},0.14\n")
    policy = SpacingPolicy()
    policy.add_table(read_pixel_table(sizes), applies_to=[frame.parent])
    engine = SegmentationEngine(tiny_onnx_model, device="cpu")
    (record,) = measure_paths([frame.parent], engine, spacing_policy=policy)
    assert record.spacing.source == "csv" and record.spacing.detail == "sizes.csv row 3"
    # The same CSV given as a plain mapping still applies to the paths measured.
    (record,) = measure_paths([frame], engine, pixel_csv_sizes=read_pixel_table(sizes))
    assert record.spacing.detail == "sizes.csv row 3"
