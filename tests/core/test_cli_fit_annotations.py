"""`hc-studio fit-annotations` on phantom annotations and on HC18."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.biometry import biometry_from_ellipse
from hc_studio.core.cli import main
from hc_studio.core.commands.fit_annotations import read_reference_hc
from hc_studio.core.phantom import make_phantom
from hc_studio.core.spacing import Spacing

PIXEL_MM = 0.12


def write_grey(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {Path(row["file"]).name: row for row in csv.DictReader(handle)}


def test_hc18_style_outlines_with_reference(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "training_set"
    truths, lines = {}, ["filename,pixel size(mm),head circumference (mm)"]
    for number, seed in ((1, 11), (2, 12)):
        phantom = make_phantom(seed=seed)
        name = f"{number:03d}_HC.png"
        write_grey(folder / name, phantom.image)
        write_grey(folder / f"{number:03d}_HC_Annotation.png", phantom.outline.astype(float))
        truths[name] = biometry_from_ellipse(phantom.ellipse_px, Spacing.square(PIXEL_MM)).hc
        lines.append(f"{name},{PIXEL_MM},{truths[name] + 0.05 * number:.2f}")
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("\n".join(lines) + "\n")
    out = tmp_path / "fit.csv"

    assert main(["fit-annotations", str(folder), "--pixel-csv", str(sizes), "--out", str(out)]) == 0

    rows = read_rows(out)
    for name, truth in truths.items():
        row = rows[name]
        assert row["origin"] == "annotation" and row["unit"] == "mm"
        assert float(row["hc"]) == pytest.approx(truth, rel=0.005)
        difference = float(row["hc"]) - float(row["reference_hc"])
        assert float(row["hc_difference"]) == pytest.approx(difference, abs=1e-3)
    largest = max(abs(float(row["hc_difference"])) for row in rows.values())
    err = capsys.readouterr().err
    assert "2 annotation(s) fitted (hc18 layout)" in err
    assert f"largest {largest:.3f}" in err


def test_filled_masks_and_problems(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "labelled"
    phantom = make_phantom(seed=21)
    write_grey(folder / "images" / "a.png", phantom.image)
    write_grey(folder / "masks" / "a.png", phantom.mask.astype(float))
    write_grey(folder / "images" / "lonely.png", phantom.image)  # no mask: a problem
    out = tmp_path / "fit.csv"

    code = main(["fit-annotations", str(folder), "--pixel-size", str(PIXEL_MM), "--out", str(out)])

    assert code == 1
    rows = read_rows(out)
    assert list(rows) == ["a.png"] and "reference_hc" not in rows["a.png"]
    truth = biometry_from_ellipse(phantom.ellipse_px, Spacing.square(PIXEL_MM)).hc
    assert float(rows["a.png"]["hc"]) == pytest.approx(truth, rel=0.005)
    report = capsys.readouterr().err
    assert "lonely.png: skipped: image without mask" in report
    assert "a.png: imported: filled mask" in report  # the import report names every frame


def test_reference_hc_column_is_optional(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("filename,pixel size(mm)\n001_HC.png,0.1\n")
    assert read_reference_hc(plain) == {}
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,pixel size(mm),head circumference (mm)\n001_HC.png,0.1,big\n")
    with pytest.raises(ValueError, match="bad.csv:2"):
        read_reference_hc(bad)


@pytest.mark.hc18
def test_hc18_reference_is_reproduced_within_a_tenth_of_a_mm(hc18_dir: Path, tmp_path) -> None:
    source = hc18_dir / "training_set"
    reference_csv = hc18_dir / "training_set_pixel_size_and_HC.csv"
    listed = [line.split(",")[0] for line in reference_csv.read_text().splitlines()[1:]]
    # A spread of frames, including the one whose fit is furthest from its reference.
    names = sorted(set(listed[::40]) | {"637_HC.png"})
    folder = tmp_path / "training_set"
    folder.mkdir()
    for name in names:
        shutil.copy(source / name, folder / name)
        annotation = name.replace(".png", "_Annotation.png")
        shutil.copy(source / annotation, folder / annotation)
    out = tmp_path / "fit.csv"
    argv = ["fit-annotations", str(folder), "--pixel-csv", str(reference_csv), "--out", str(out)]
    assert main(argv) == 0
    rows = read_rows(out)
    assert set(rows) == set(names)
    assert max(abs(float(row["hc_difference"])) for row in rows.values()) < 0.1
