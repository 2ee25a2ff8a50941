"""Labelled and unlabelled folder import: layouts, masks, problems, spacing, patients."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.dataset import (
    DatasetLayoutError,
    ImportProblem,
    import_labelled_folder,
    import_unlabelled_folder,
)
from hc_studio.core.ellipse import Ellipse, ellipse_iou, fit_ellipse_to_points, rasterize_ellipse
from hc_studio.core.spacing import Spacing
from skimage import measure
from test_io_dicom import write_dicom

SHAPE = (120, 160)
TRUTH = Ellipse(80.3, 60.6, 50.0, 32.0, 0.4)
HC18_FRAMES = ["001_HC.png", "002_HC.png", "010_HC.png", "010_2HC.png", "019_2HC.png"]


def ramanujan_hc(ellipse: Ellipse, mm: float) -> float:
    """Perimeter (mm) from semi-axes in pixels (Ramanujan II)."""
    a, b = ellipse.a * mm, ellipse.b * mm
    return math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))


def image() -> np.ndarray:
    return (np.random.default_rng(1).random(SHAPE) * 255).astype(np.uint8)


def filled_mask() -> np.ndarray:
    return rasterize_ellipse(TRUTH, SHAPE).astype(np.uint8) * 255


def outline_mask(closed: bool = True, thickness: int = 1, arc: int = 200) -> np.ndarray:
    """The TRUTH ellipse drawn by OpenCV (integer centre and axes): a ring, an arc or filled."""
    outline = np.zeros(SHAPE, np.uint8)
    centre = (round(TRUTH.cx), round(TRUTH.cy))
    axes = (round(TRUTH.a), round(TRUTH.b))
    end = 360 if closed else arc
    cv2.ellipse(outline, centre, axes, math.degrees(TRUTH.angle), 0, end, 255, thickness)
    return outline


def put(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """images/ + masks/ with two good pairs and one of each problem."""
    root = tmp_path / "study"
    put(root / "images" / "good.png", image())
    put(root / "masks" / "good.png", filled_mask())
    put(root / "images" / "drawn.jpg", image())
    put(root / "masks" / "drawn.png", outline_mask())
    put(root / "images" / "lonely.png", image())
    put(root / "masks" / "orphan.png", filled_mask())
    put(root / "images" / "big.png", np.zeros((60, 80), np.uint8))
    put(root / "masks" / "big.png", filled_mask())
    put(root / "images" / "blank.png", image())
    put(root / "masks" / "blank.png", np.zeros(SHAPE, np.uint8))
    twins = np.zeros(SHAPE, np.uint8)
    cv2.circle(twins, (40, 60), 20, 255, -1)
    cv2.circle(twins, (120, 60), 20, 255, -1)
    put(root / "images" / "twins.png", image())
    put(root / "masks" / "twins.png", twins)
    put(root / "images" / "open.png", image())
    put(root / "masks" / "open.png", outline_mask(closed=False))
    put(root / "images" / "arc.png", image())
    put(root / "masks" / "arc.png", outline_mask(closed=False, arc=90))
    dot = np.zeros(SHAPE, np.uint8)
    dot[50, 50:52] = 255
    put(root / "images" / "dot.png", image())
    put(root / "masks" / "dot.png", dot)
    put(root / "images" / "broken.png", image())
    (root / "images" / "broken.png").write_bytes((root / "images" / "broken.png").read_bytes()[:80])
    put(root / "masks" / "broken.png", filled_mask())
    (root / "patients.csv").write_text("filename,patient\ngood.png,P7\ndrawn,P7\n")
    return root


def problems_by_name(problems: list[ImportProblem]) -> dict[str, str]:
    return {p.path.name: p.problem for p in problems}


def test_images_masks_import_keeps_good_pairs_and_lists_problems(mixed_folder: Path) -> None:
    result = import_labelled_folder(mixed_folder)
    assert result.layout == "images-masks"
    assert [p.image_path.name for p in result.pairs] == ["drawn.jpg", "good.png", "open.png"]
    problems = problems_by_name(result.problems)
    assert problems["lonely.png"] == "image without mask"
    assert problems["orphan.png"] == "mask without image"
    assert problems["big.png"].startswith("size mismatch: mask is 160x120, image big.png is 80x60")
    assert problems["blank.png"] == "mask is empty"
    assert problems["twins.png"].startswith("mask has 2 separate blobs")
    assert problems["arc.png"].startswith("outline that is not closed covers only")
    assert problems["dot.png"].startswith("no ellipse fits the mask")
    assert problems["broken.png"].startswith("truncated PNG")
    assert len(result.problems) == 8
    assert (
        str(result.problems[0]) == f"{result.problems[0].path.name}: {result.problems[0].problem}"
    )


def test_filled_mask_stays_and_ellipse_is_fitted(mixed_folder: Path) -> None:
    pair = next(
        p for p in import_labelled_folder(mixed_folder).pairs if p.image_path.stem == "good"
    )
    assert pair.mask.dtype == bool and pair.image.dtype == np.float32
    assert pair.image.shape == pair.mask.shape == SHAPE
    np.testing.assert_array_equal(pair.mask, filled_mask() > 0)
    assert pair.mask_source == "filled"
    fitted = pair.ellipse_px
    assert abs(fitted.cx - TRUTH.cx) < 0.2 and abs(fitted.cy - TRUTH.cy) < 0.2
    assert abs(fitted.a - TRUTH.a) < 0.3 and abs(fitted.b - TRUTH.b) < 0.3
    assert pair.patient == "P7" and pair.spacing == Spacing.uncalibrated()


def test_drawn_outline_is_filled_as_drawn(mixed_folder: Path) -> None:
    pair = next(
        p for p in import_labelled_folder(mixed_folder).pairs if p.image_path.stem == "drawn"
    )
    assert pair.mask_source == "outline"
    outline = outline_mask() > 0
    assert pair.mask[outline].all()  # the drawn ring is part of the head
    drawn_filled = outline_mask(thickness=-1) > 0  # and so is all it encloses
    assert ellipse_iou(pair.mask, drawn_filled) > 0.98
    assert pair.mask.sum() > 10 * outline.sum()  # filled, far more than the ring
    assert pair.patient == "P7"


def test_load_pixels_false_keeps_no_arrays_but_reads_them_again(mixed_folder: Path) -> None:
    loaded = import_labelled_folder(mixed_folder).pairs
    lazy = import_labelled_folder(mixed_folder, load_pixels=False).pairs
    for full, light in zip(loaded, lazy, strict=True):
        assert light.image is None and light.mask is None
        np.testing.assert_array_equal(light.read_image(), full.image)
        np.testing.assert_array_equal(light.read_mask(), full.mask)
        assert light.ellipse_px == full.ellipse_px


def test_user_pixel_size_wins_over_csv(mixed_folder: Path) -> None:
    (mixed_folder / "study_pixel_size.csv").write_text("filename,pixel size(mm)\ngood.png,0.2\n")
    by_csv = {p.image_path.name: p.spacing for p in import_labelled_folder(mixed_folder).pairs}
    assert by_csv["good.png"] == Spacing.square(0.2, "csv")
    assert by_csv["drawn.jpg"] == Spacing.uncalibrated()
    by_user = import_labelled_folder(mixed_folder, pixel_mm=0.3).pairs
    assert {p.spacing for p in by_user} == {Spacing.square(0.3, "user")}


def test_anisotropic_dicom_pair_ellipse_equals_the_mm_space_fit(tmp_path: Path) -> None:
    """The project fits in mm space under anisotropic spacing; the import fits pixels, which is
    the same ellipse because the fit is equivariant under axis scaling. Checked on a shape that
    is not an ellipse, where a non-equivariant fit would differ."""
    row_mm, col_mm = 0.1, 0.3
    root = tmp_path / "study"
    (root / "images").mkdir(parents=True)
    write_dicom(root / "images" / "scan.dcm", image()[None], pixel_spacing=(row_mm, col_mm))
    blob = np.zeros(SHAPE, np.uint8)
    cv2.rectangle(blob, (50, 30), (110, 90), 255, -1)
    cv2.circle(blob, (110, 60), 25, 255, -1)
    put(root / "masks" / "scan.png", blob)
    (pair,) = import_labelled_folder(root).pairs
    assert pair.spacing == Spacing(row_mm, col_mm, "dicom-pixel-spacing")
    contour = max(measure.find_contours(np.pad(blob > 0, 1).astype(float), 0.5), key=len) - 1
    xy = contour[:, ::-1]
    in_mm = fit_ellipse_to_points(xy * [col_mm, row_mm]).scaled(1 / col_mm, 1 / row_mm)
    fitted = pair.ellipse_px
    assert abs(fitted.a - in_mm.a) < 1e-3 and abs(fitted.b - in_mm.b) < 1e-3
    assert abs(fitted.cx - in_mm.cx) < 1e-3 and abs(fitted.cy - in_mm.cy) < 1e-3


def test_folder_without_a_layout(tmp_path: Path) -> None:
    put(tmp_path / "x.png", image())
    with pytest.raises(DatasetLayoutError, match="no labelled layout"):
        import_labelled_folder(tmp_path)


def test_unlabelled_import_expands_pages_and_skips_labels(tmp_path: Path) -> None:
    put(tmp_path / "a.png", image())
    put(tmp_path / "masks" / "a.png", filled_mask())  # a label folder, not frames
    put(tmp_path / "a_Annotation.png", filled_mask())
    assert cv2.imwritemulti(str(tmp_path / "cine.tif"), [image(), image(), image()])
    (tmp_path / "bad.png").write_bytes(b"garbage")
    (tmp_path / "frames_pixel_size.csv").write_text("filename,pixel size(mm)\na.png,0.1\n")
    result = import_unlabelled_folder(tmp_path, load_pixels=False)
    assert result.layout == "unlabelled" and result.pairs == []
    frames = [(f.image_path.name, f.index) for f in result.unlabelled]
    assert frames == [("a.png", 0), ("cine.tif", 0), ("cine.tif", 1), ("cine.tif", 2)]
    assert [str(p) for p in result.problems] == [
        "bad.png: not a readable image (truncated or not an image?)"
    ]
    assert result.unlabelled[0].spacing == Spacing.square(0.1, "csv")
    assert result.unlabelled[0].image is None
    assert result.unlabelled[2].read_image().shape == SHAPE


def test_synthetic_hc18_folder_pairs_and_problems(tmp_path: Path) -> None:
    folder = tmp_path / "training_set"
    put(folder / "001_HC.png", image())
    put(folder / "001_HC_Annotation.png", outline_mask())
    put(folder / "002_HC.png", image())  # no annotation
    put(folder / "003_HC_Annotation.png", outline_mask())  # no image
    rings = np.zeros(SHAPE, np.uint8)
    cv2.circle(rings, (40, 60), 20, 255, 1)
    cv2.circle(rings, (120, 60), 20, 255, 1)
    put(folder / "004_2HC.png", image())
    put(folder / "004_2HC_Annotation.png", rings)
    (tmp_path / "training_set_pixel_size.csv").write_text(
        "filename,pixel size(mm)\n001_HC.png,0.1\n"
    )
    result = import_labelled_folder(folder)
    assert result.layout == "hc18"
    (pair,) = result.pairs
    assert (pair.image_path.name, pair.mask_path.name) == ("001_HC.png", "001_HC_Annotation.png")
    assert pair.patient == "001" and pair.spacing == Spacing.square(0.1, "csv")
    # The outline's own pixels give the ellipse; the mask is that ellipse, filled.
    rows, cols = np.nonzero(outline_mask())
    expected = fit_ellipse_to_points(np.stack([cols, rows], axis=1))
    assert pair.ellipse_px == pytest.approx(expected)
    np.testing.assert_array_equal(pair.mask, rasterize_ellipse(expected, SHAPE))
    assert problems_by_name(result.problems) == {
        "002_HC.png": "image without mask (no _Annotation.png)",
        "003_HC_Annotation.png": "mask without image",
        "004_2HC_Annotation.png": "mask has 2 separate blobs; expected one head",
    }


@pytest.mark.hc18
def test_hc18_import_matches_reference_hc(hc18_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "training_set"
    folder.mkdir()
    for name in HC18_FRAMES:
        shutil.copy(hc18_dir / "training_set" / name, folder / name)
        annotation = name.replace(".png", "_Annotation.png")
        shutil.copy(hc18_dir / "training_set" / annotation, folder / annotation)
    with (hc18_dir / "training_set_pixel_size_and_HC.csv").open() as handle:
        rows = [row for row in csv.reader(handle) if row[0] in HC18_FRAMES or row[0] == "filename"]
    with (tmp_path / "training_set_pixel_size_and_HC.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    # The test set's CSV sits beside it too and also names 001_HC.png (another frame).
    shutil.copy(hc18_dir / "test_set_pixel_size.csv", tmp_path / "test_set_pixel_size.csv")
    reference = {row[0]: (float(row[1]), float(row[2])) for row in rows[1:]}

    result = import_labelled_folder(folder)
    assert result.layout == "hc18" and result.problems == []
    assert sorted(p.image_path.name for p in result.pairs) == sorted(HC18_FRAMES)
    for pair in result.pairs:
        mm, hc_mm = reference[pair.image_path.name]
        assert pair.spacing == Spacing.square(mm, "csv")
        assert abs(ramanujan_hc(pair.ellipse_px, mm) - hc_mm) < 0.1
        assert pair.mask_source == "hc18-outline"
        np.testing.assert_array_equal(
            pair.mask, rasterize_ellipse(pair.ellipse_px, pair.mask.shape)
        )
        assert pair.mask.sum() == pytest.approx(
            math.pi * pair.ellipse_px.a * pair.ellipse_px.b, rel=0.01
        )
    patients = {p.image_path.name: p.patient for p in result.pairs}
    assert patients["010_HC.png"] == patients["010_2HC.png"] == "010"
    lazy = import_labelled_folder(folder, load_pixels=False).pairs
    for full, light in zip(result.pairs, lazy, strict=True):
        assert light.mask is None and light.ellipse_px == full.ellipse_px
        np.testing.assert_array_equal(light.read_mask(), full.mask)
