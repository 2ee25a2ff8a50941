"""The issue's acceptance run: 8 real HC18 frames, 6 iterations, every core method ends done."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from hc_studio.core.cli import main
from hc_studio.core.events import Done, Progress, Start, parse_event

N_FRAMES = 8


@pytest.fixture(scope="module")
def eight_hc18_frames(hc18_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hc18_8")
    source = hc18_dir / "training_set"
    frames = sorted(p.stem for p in source.glob("*HC.png"))[:N_FRAMES]
    for stem in frames:
        for name in (f"{stem}.png", f"{stem}_Annotation.png"):
            shutil.copy(source / name, folder / name)
    with (hc18_dir / "training_set_pixel_size_and_HC.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [rows[0]] + [row for row in rows[1:] if row[0] in {f"{s}.png" for s in frames}]
    with (folder / "training_set_pixel_size_and_HC.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(kept)
    return folder


@pytest.mark.hc18
@pytest.mark.parametrize("method", ["supervised", "mean-teacher", "ersr"])
def test_eight_real_frames_train_and_end_with_done(eight_hc18_frames, tmp_path, capsys, method):
    code = main(
        [
            "train", "--labeled", str(eight_hc18_frames), "--method", method,
            "--iterations", "6", "--batch-size", "2", "--image-size", "64", "96",
            "--device", "cpu", "--out", str(tmp_path / "run"), "--no-stdin", "--threads", "1",
        ]
    )  # fmt: skip
    events = [parse_event(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    start = next(e for e in events if isinstance(e, Start))
    assert start.counts["labelled"] + start.counts["validation"] == N_FRAMES
    assert start.counts["skipped"] == 0
    assert [e.iteration for e in events if isinstance(e, Progress)][-1] == 6
    assert isinstance(events[-1], Done) and Path(events[-1].onnx_path).is_file()
