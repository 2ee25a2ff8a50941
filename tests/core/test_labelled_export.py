"""Accepted frames exported as a labelled folder come back through the dataset import."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.dataset import import_labelled_folder
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.labelled_export import PIXEL_CSV_NAME, export_labelled_folder
from hc_studio.core.measure import record_from_ellipse
from hc_studio.core.phantom import make_phantom
from hc_studio.core.spacing import Spacing


def _accepted(file: str, index: int, ellipse: Ellipse, spacing: Spacing, accepted=True):
    record = record_from_ellipse(file, index, spacing, ellipse, "m", origin="edited")
    return record.replace(accepted=accepted)


def test_the_exported_folder_reads_back_with_the_same_ellipses(tmp_path: Path) -> None:
    phantoms = {
        ("/clinic/a/one.png", 0): make_phantom(seed=1),
        ("/clinic/b/one.png", 0): make_phantom(seed=2),  # same name in another folder
        ("/clinic/a/clip.dcm", 3): make_phantom(seed=3),
    }
    sizes = [0.12, 0.2, 0.15]
    # the accepted ellipses are not the phantoms' truth: they are what the person accepted
    records = [
        _accepted(file, index, Ellipse(200.0 + 3.3 * n, 135.0, 110.0 - n, 80.5, 0.2 + n), spacing)
        for n, ((file, index), spacing) in enumerate(
            zip(phantoms, (Spacing.square(s, "user") for s in sizes), strict=True)
        )
    ]
    records.append(
        _accepted("/clinic/a/rejected.png", 0, records[0].ellipse_px, records[0].spacing, False)
    )
    records.append(_accepted("/clinic/a/raw.png", 0, records[0].ellipse_px, Spacing.uncalibrated()))
    pixels = {key: p.image for key, p in phantoms.items()}

    out = tmp_path / "labels"
    result = export_labelled_folder(records, out, lambda r: pixels[(r.file, r.frame_index)])

    assert result.written == ["one.png", "one-2.png", "clip_f0003.png"]
    assert result.left_out == ["raw.png frame 1: no pixel size (uncalibrated)"]
    assert (out / PIXEL_CSV_NAME).read_text().splitlines()[0] == "filename,pixel size(mm)"
    mask = cv2.imread(str(out / "masks" / "one.png"), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(mask)) == {0, 255}
    imported = import_labelled_folder(out)
    assert not imported.problems
    by_name = {pair.image_path.name: pair for pair in imported.pairs}
    for name, record, size in zip(result.written, records, sizes, strict=False):
        pair = by_name[name]
        assert pair.spacing.row_mm == pytest.approx(size)
        got, want = pair.ellipse_px, record.ellipse_px
        assert abs(got.cx - want.cx) < 0.5 and abs(got.cy - want.cy) < 0.5
        assert abs(got.a - want.a) < 0.5 and abs(got.b - want.b) < 0.5
        assert np.allclose(pair.image, pixels[(record.file, record.frame_index)], atol=1 / 255)


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "labels"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    record = _accepted(
        "/a/one.png", 0, Ellipse(200.0, 135.0, 100.0, 80.0, 0.3), Spacing.square(0.1, "user")
    )
    with pytest.raises(ValueError, match="not an empty folder"):
        export_labelled_folder([record], out, lambda r: make_phantom().image)
    assert (out / "keep.txt").read_text() == "mine"


def test_nothing_to_export_leaves_nothing_behind(tmp_path: Path) -> None:
    record = _accepted(
        "/a/one.png", 0, Ellipse(200.0, 135.0, 100.0, 80.0, 0.3), Spacing.uncalibrated()
    )
    with pytest.raises(ValueError, match="no accepted frame can be exported"):
        export_labelled_folder([record], tmp_path / "labels", lambda r: make_phantom().image)
    assert list(tmp_path.iterdir()) == []
