"""Outputs of measure, evaluate and fit-annotations never destroy data.

Bad output paths are refused before the batch starts (exit 2, the option and the path named, no
temporary file named); a batch stopped by an error, Ctrl-C or SIGTERM keeps the previous output
whole and puts the rows measured so far beside it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core import inference
from hc_studio.core.cli import main
from hc_studio.core.export import read_records_csv
from hc_studio.core.phantom import make_phantom

OLD_CSV = "file,status\nolder-complete-run.png,ok\n"


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    return path


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    for seed in range(4):
        write_png(tmp_path / "frames" / f"f{seed}.png", make_phantom(seed=seed).image)
    return tmp_path / "frames"


@pytest.fixture
def no_engine(monkeypatch):
    """Fails the test if a model is loaded: refusals come before any work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the batch started before the output paths were checked")

    monkeypatch.setattr(inference, "SegmentationEngine", refuse)


def measure(frames: Path, model: Path, *extra: str) -> int:
    return main(["measure", str(frames), "--model", str(model), "--device", "cpu", *extra])


@pytest.mark.parametrize(
    "case", ["frame", "pixel-csv", "model", "hc18-out", "folder", "symlink", "no-parent"]
)
def test_bad_output_paths_are_refused_before_the_batch(
    case, frames, tiny_onnx_model, tmp_path, no_engine, capsys
) -> None:
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("filename,pixel size(mm)\nf0.png,0.1\n")
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "target.csv")
    out = {
        "frame": frames / "f1.png",
        "pixel-csv": sizes,
        "model": tiny_onnx_model,
        "hc18-out": tmp_path / "same.csv",
        "folder": frames,
        "symlink": link,
        "no-parent": tmp_path / "missing" / "m.csv",
    }[case]
    before = out.read_bytes() if out.is_file() else None
    extra = ["--pixel-csv", str(sizes), "--out", str(out)]
    extra += ["--hc18-out", str(tmp_path / "same.csv")] if case == "hc18-out" else []

    assert measure(frames, tiny_onnx_model, *extra) == 2

    err = capsys.readouterr().err
    assert err.startswith("hc-studio: error: --out ") and str(out) in err
    assert ".tmp" not in err and "Traceback" not in err
    assert (out.read_bytes() if out.is_file() else None) == before
    assert not (tmp_path / "target.csv").exists()


def test_masks_folder_must_not_hold_the_frames(
    frames, tiny_onnx_model, tmp_path, no_engine, capsys
):
    argv = ["--out", str(tmp_path / "m.csv"), "--masks-out", str(frames)]
    assert measure(frames, tiny_onnx_model, *argv) == 2
    assert f"--masks-out {frames}: holds input files" in capsys.readouterr().err


def test_fit_annotations_and_evaluate_check_their_outputs(tmp_path, tiny_onnx_model, capsys):
    folder = tmp_path / "set"
    phantom = make_phantom(seed=1)
    write_png(folder / "001_HC.png", phantom.image)
    annotation = write_png(folder / "001_HC_Annotation.png", phantom.outline.astype(float))
    before = annotation.read_bytes()
    assert main(["fit-annotations", str(folder), "--out", str(annotation)]) == 2
    assert f"--out {annotation}: is one of the inputs" in capsys.readouterr().err
    assert annotation.read_bytes() == before
    argv = ["evaluate", str(folder), "--model", str(tiny_onnx_model)]
    assert main([*argv, "--json", str(tiny_onnx_model)]) == 2
    assert f"--json {tiny_onnx_model}: is one of the inputs" in capsys.readouterr().err
    same = str(tmp_path / "r.csv")
    assert main([*argv, "--json", same, "--per-frame", same]) == 2
    assert "--json and --per-frame name the same path" in capsys.readouterr().err


def test_a_write_error_never_names_a_temporary_file(tmp_path, capsys) -> None:
    """The check comes first; the atomic write itself names the target too."""
    from hc_studio.core.atomic import atomic_write

    target = tmp_path / "taken"
    target.mkdir()
    with pytest.raises(OSError) as caught, atomic_write(target) as handle:
        handle.write("x")
    assert str(target) in str(caught.value) and ".tmp" not in str(caught.value)
    assert list(tmp_path.iterdir()) == [target]


class FailingEngine(inference.SegmentationEngine):
    """The real engine that fails at its third frame, the way `failure` says."""

    failure: BaseException | None = None

    def predict(self, image):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            if isinstance(self.failure, signal.Signals):
                os.kill(os.getpid(), self.failure)
            else:
                raise self.failure
        return super().predict(image)


@pytest.mark.parametrize(
    ("failure", "code", "why"),
    [
        (RuntimeError("CUDA out of memory"), 2, "RuntimeError: CUDA out of memory"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (signal.SIGTERM, 143, "terminated"),
    ],
)
def test_a_stopped_batch_keeps_the_old_csv_and_saves_its_rows_beside_it(
    failure, code, why, frames, tiny_onnx_model, tmp_path, monkeypatch, capsys
) -> None:
    out = tmp_path / "measurements.csv"
    out.write_text(OLD_CSV)
    monkeypatch.setattr(FailingEngine, "failure", failure)
    monkeypatch.setattr(inference, "SegmentationEngine", FailingEngine)

    assert measure(frames, tiny_onnx_model, "--pixel-size", "0.1", "--out", str(out)) == code

    assert out.read_text() == OLD_CSV
    partial = tmp_path / "measurements.partial.csv"
    rows = read_records_csv(partial)
    assert [Path(record.file).name for record in rows] == ["f0.png", "f1.png"]
    assert all(record.ok for record in rows)
    err = capsys.readouterr().err
    assert f"measuring stopped ({why}) after 2 frame(s)" in err
    assert str(partial) in err and f"{out} was not changed" in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_batch_that_ends_normally_writes_no_partial_file(frames, tiny_onnx_model, tmp_path):
    out = tmp_path / "m.csv"
    out.write_text(OLD_CSV)
    assert measure(frames, tiny_onnx_model, "--out", str(out)) == 0
    assert len(read_records_csv(out)) == 4 and not (tmp_path / "m.partial.csv").exists()


def test_a_stopped_evaluation_keeps_its_old_outputs(tmp_path, tiny_onnx_model, monkeypatch, capsys):
    folder = tmp_path / "set"
    for number in range(1, 5):
        phantom = make_phantom(seed=number)
        write_png(folder / f"{number:03d}_HC.png", phantom.image)
        write_png(folder / f"{number:03d}_HC_Annotation.png", phantom.outline.astype(float))
    summary, frames_csv = tmp_path / "summary.json", tmp_path / "frames.csv"
    summary.write_text("{}\n")
    frames_csv.write_text(OLD_CSV)
    monkeypatch.setattr(FailingEngine, "failure", KeyboardInterrupt())
    monkeypatch.setattr(inference, "SegmentationEngine", FailingEngine)
    argv = ["evaluate", str(folder), "--model", str(tiny_onnx_model), "--pixel-size", "0.1"]
    argv += ["--json", str(summary), "--per-frame", str(frames_csv)]

    assert main(argv) == 130

    assert summary.read_text() == "{}\n" and frames_csv.read_text() == OLD_CSV
    partial = tmp_path / "frames.partial.csv"
    assert partial.read_text().splitlines()[1].startswith("001_HC.png,")
    assert len(partial.read_text().splitlines()) == 3  # header and two frames
    assert "evaluation stopped (interrupted) after 2 frame(s)" in capsys.readouterr().err
