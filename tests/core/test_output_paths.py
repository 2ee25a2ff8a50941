"""Output paths are refused before anything runs: inputs, other outputs, links, non-files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hc_studio.core.output_paths import (
    OutputPathError,
    check_outputs,
    labelled_folder_inputs,
    partial_path,
)


@pytest.fixture
def frame(tmp_path: Path) -> Path:
    path = tmp_path / "frames" / "001_HC.png"
    path.parent.mkdir()
    path.write_bytes(b"frame")
    return path


def refused(files: dict, inputs: list, folders: dict | None = None) -> str:
    with pytest.raises(OutputPathError) as caught:
        check_outputs(files, inputs, folders)
    return str(caught.value)


def test_a_fresh_file_beside_the_inputs_is_fine(tmp_path: Path, frame: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_text("an older result, replaced on purpose\n")
    check_outputs({"--out": tmp_path / "m.csv", "--hc18-out": old, "--x": None}, [frame])
    check_outputs({}, [frame], {"--masks-out": tmp_path / "masks"})


def test_an_input_is_never_an_output(tmp_path: Path, frame: Path) -> None:
    message = refused({"--out": frame}, [frame])
    assert message.startswith(f"--out {frame}: ") and "one of the inputs" in message
    link = tmp_path / "frames_link"
    link.symlink_to(frame.parent)
    assert "one of the inputs" in refused({"--out": link / frame.name}, [frame])
    hard = tmp_path / "hard.png"
    os.link(frame, hard)
    assert "one of the inputs" in refused({"--json": hard}, [frame])
    relative = Path(os.path.relpath(frame))
    assert "one of the inputs" in refused({"--out": relative}, [frame])


def test_two_outputs_never_share_a_path(tmp_path: Path, frame: Path) -> None:
    out = tmp_path / "m.csv"
    message = refused({"--out": out, "--hc18-out": tmp_path / "." / "m.csv"}, [frame])
    assert "--out and --hc18-out name the same path" in message


def test_links_and_non_files_are_refused(tmp_path: Path, frame: Path) -> None:
    target = tmp_path / "elsewhere.csv"
    target.write_text("keep me\n")
    link = tmp_path / "m.csv"
    link.symlink_to(target)
    assert "is a symbolic link" in refused({"--out": link}, [frame])
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    assert "is a symbolic link" in refused({"--out": dangling}, [frame])
    assert "is a folder" in refused({"--out": tmp_path}, [frame])
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in refused({"--per-frame": fifo}, [frame])
    if os.path.exists(os.devnull) and stat.S_ISCHR(os.stat(os.devnull).st_mode):
        assert "not a regular file" in refused({"--out": Path(os.devnull)}, [frame])
    assert "is not a folder" in refused({}, [frame], {"--masks-out": target})
    assert target.read_text() == "keep me\n"


def test_the_folder_must_exist_and_take_files(tmp_path: Path, frame: Path) -> None:
    missing = tmp_path / "no_such_folder" / "m.csv"
    assert f"the folder {missing.parent} does not exist" in refused({"--out": missing}, [frame])


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused(tmp_path: Path, frame: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert "is not writable" in refused({"--out": locked / "m.csv"}, [frame])
    finally:
        locked.chmod(0o700)


def test_a_mask_folder_never_holds_the_inputs(tmp_path: Path, frame: Path) -> None:
    message = refused({}, [frame], {"--masks-out": frame.parent})
    assert message.startswith(f"--masks-out {frame.parent}: holds input files")
    links = tmp_path / "links"
    links.mkdir()
    (links / frame.name).symlink_to(frame)
    assert "holds input files" in refused({}, [links / frame.name], {"--masks-out": links})
    assert "same path" in refused(
        {"--out": tmp_path / "x"}, [frame], {"--masks-out": tmp_path / "x"}
    )


def test_partial_file_and_labelled_inputs(tmp_path: Path, frame: Path) -> None:
    assert partial_path(tmp_path / "m.csv") == tmp_path / "m.partial.csv"
    assert partial_path("results") == Path("results.partial")
    sizes = frame.parent.parent / "frames_pixel_size.csv"
    sizes.write_text("filename,pixel size(mm)\n")
    (frame.parent.parent / "notes.csv").write_text("x\n")
    assert sorted(labelled_folder_inputs(frame.parent)) == sorted([frame, sizes])
