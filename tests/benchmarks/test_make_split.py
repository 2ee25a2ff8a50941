"""benchmarks/make_split.py: a fixed patient-level split made of links, never copies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import make_split
import pytest

HEADER = ["filename", "pixel size(mm)", "head circumference (mm)"]
# Patients 001..012; 003, 007 and 010 have a second frame (NNN_2HC.png).
FRAMES = [f"{n:03d}_HC.png" for n in range(1, 13)] + ["003_2HC.png", "007_2HC.png", "010_2HC.png"]


def make_hc18_folder(root: Path, frames: list[str] = FRAMES) -> tuple[Path, Path]:
    """A fake HC18 folder (file contents do not matter to the split) and its CSV."""
    data = root / "training_set"
    data.mkdir(parents=True)
    rows = [HEADER]
    for index, name in enumerate(frames):
        (data / name).write_bytes(b"frame " + name.encode())
        (data / make_split.annotation_name(name)).write_bytes(b"outline")
        rows.append([name, f"0.{index + 1:02d}", f"{100 + index}.5"])
    csv_path = root / "training_set_pixel_size_and_HC.csv"
    with csv_path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return data, csv_path


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_no_patient_on_both_sides_and_every_frame_once(tmp_path: Path) -> None:
    data, csv_path = make_hc18_folder(tmp_path)
    summary = make_split.write_split(data, csv_path, tmp_path / "split", 0.25, seed=3)
    train, val = summary["train"], summary["val"]
    assert not set(train["patients"]) & set(val["patients"])
    assert sorted(train["frames"] + val["frames"]) == sorted(FRAMES)
    assert 2 <= len(val["frames"]) <= 6  # about a quarter of 15 frames, whole patients
    # The two frames of a patient travel together.
    for side in (train, val):
        if "003" in side["patients"]:
            assert {"003_HC.png", "003_2HC.png"} <= set(side["frames"])


def test_links_point_at_the_source_frames_and_annotations(tmp_path: Path) -> None:
    data, csv_path = make_hc18_folder(tmp_path)
    out = tmp_path / "split"
    summary = make_split.write_split(data, csv_path, out, 0.2, seed=0)
    for side in ("train", "val"):
        for name in summary[side]["frames"]:
            for linked in (out / side / name, out / side / make_split.annotation_name(name)):
                assert linked.is_symlink()
                assert not Path(linked.readlink()).is_absolute()  # survives moving the tree
                assert linked.resolve() == (data / linked.name).resolve()
        assert len(list((out / side).iterdir())) == 2 * len(summary[side]["frames"])


def test_each_side_gets_its_csv_rows_and_split_json(tmp_path: Path) -> None:
    data, csv_path = make_hc18_folder(tmp_path)
    out = tmp_path / "split"
    summary = make_split.write_split(data, csv_path, out, 0.2, seed=0)
    source_rows = {row[0]: row for row in read_rows(csv_path)[1:]}
    for side in ("train", "val"):
        rows = read_rows(out / f"{side}_pixel_size.csv")
        assert rows[0] == HEADER
        assert [row[0] for row in rows[1:]] == summary[side]["frames"]
        assert all(row == source_rows[row[0]] for row in rows[1:])
    written = json.loads((out / "split.json").read_text())
    assert written["val"]["patients"] == summary["val"]["patients"]
    assert written["seed"] == 0 and written["val_fraction"] == 0.2


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path) -> None:
    data, csv_path = make_hc18_folder(tmp_path)
    first = make_split.write_split(data, csv_path, tmp_path / "a", 0.3, seed=1)
    again = make_split.write_split(data, csv_path, tmp_path / "a", 0.3, seed=1, force=True)
    other = make_split.write_split(data, csv_path, tmp_path / "b", 0.3, seed=2)
    assert first["val"] == again["val"]
    assert other["val"]["patients"] != first["val"]["patients"]


def test_refuses_to_overwrite_without_force_and_never_removes_real_files(tmp_path: Path) -> None:
    data, csv_path = make_hc18_folder(tmp_path)
    out = tmp_path / "split"
    make_split.write_split(data, csv_path, out, 0.2, seed=0)
    with pytest.raises(make_split.SplitError, match="not empty"):
        make_split.write_split(data, csv_path, out, 0.2, seed=0)
    (out / "val" / "notes.txt").write_text("mine")
    with pytest.raises(make_split.SplitError, match="not links"):
        make_split.write_split(data, csv_path, out, 0.2, seed=0, force=True)
    assert (out / "val" / "notes.txt").read_text() == "mine"


def test_frames_without_annotation_or_file_are_reported_and_left_out(tmp_path: Path) -> None:
    data, csv_path = make_hc18_folder(tmp_path)
    (data / make_split.annotation_name("005_HC.png")).unlink()
    (data / "006_HC.png").unlink()
    summary = make_split.write_split(data, csv_path, tmp_path / "split", 0.2, seed=0)
    kept = summary["train"]["frames"] + summary["val"]["frames"]
    assert "005_HC.png" not in kept and "006_HC.png" not in kept
    assert len(summary["skipped"]) == 2
    assert any("005_HC_Annotation.png" in problem for problem in summary["skipped"])


def test_main_reports_a_bad_csv_without_traceback(tmp_path: Path, capsys) -> None:
    data, _ = make_hc18_folder(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert make_split.main([str(data), str(empty), str(tmp_path / "split")]) == 2
    assert "empty.csv: empty CSV" in capsys.readouterr().err


@pytest.mark.hc18
def test_hc18_training_set_split_is_by_patient(hc18_dir: Path) -> None:
    frames_dir = hc18_dir / "training_set"
    _, frames, problems = make_split.read_frame_rows(
        hc18_dir / "training_set_pixel_size_and_HC.csv", frames_dir
    )
    sides = make_split.plan_split(frames, 0.2, seed=0)
    train_patients = {frame.patient for frame in sides["train"]}
    val_patients = {frame.patient for frame in sides["val"]}
    assert not problems
    assert len(sides["train"]) + len(sides["val"]) == len(frames) == 798
    assert not train_patients & val_patients
    assert abs(len(sides["val"]) / len(frames) - 0.2) < 0.01
