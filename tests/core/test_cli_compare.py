"""`hc-studio compare` on phantom frames: the verdict, its exit code and the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core import cli
from hc_studio.core.phantom import make_phantom

SHAPE = (96, 128)
FRAMES = 22


def write_png(path: Path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))


def phantom_folder(folder: Path, count: int) -> Path:
    """images/ + masks/ of `count` phantoms; masks as label maps (head = 2, a blob = 1)."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for seed in range(count):
        phantom = make_phantom(SHAPE, seed=seed)
        write_png(folder / "images" / f"f{seed:02d}.png", phantom.image)
        labels = np.where(phantom.mask, 2, 0).astype(np.uint8)
        labels[-6:, :6] = 1
        cv2.imwrite(str(folder / "masks" / f"f{seed:02d}.png"), labels)
    return folder


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phantom_folder(tmp_path_factory.mktemp("clinic"), FRAMES)


@pytest.fixture(scope="module")
def blurry_model(onnx_model_factory, tiny_model_metadata, tmp_path_factory) -> Path:
    """The tiny model fed inputs it was not made for: it segments the phantoms badly."""
    path = tmp_path_factory.mktemp("blurry") / "blurry.onnx"
    return onnx_model_factory(path, tiny_model_metadata, mean=0.15)


def compare(candidate: Path, current: Path, folder: Path, out: Path, *extra: str) -> int:
    argv = ["compare", str(candidate), "--against", str(current), str(folder)]
    argv += ["--mask-label", "2", "--device", "cpu", "--json", str(out), "--bootstrap", "300"]
    return cli.main([*argv, *extra])


def test_a_worse_candidate_exits_3(clinic, tiny_onnx_model, blurry_model, tmp_path) -> None:
    code = compare(blurry_model, tiny_onnx_model, clinic, tmp_path / "c.json")
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["candidate"]["dice"]["mean"] < report["current"]["dice"]["mean"]
    assert (report["verdict"], code) == ("worse", 3)
    assert report["frames_scored"] == FRAMES and report["resampled"] == "frames"
    assert len(report["per_frame"]) == FRAMES


def test_the_better_one_and_the_same_one_exit_0(
    clinic, tiny_onnx_model, blurry_model, tmp_path
) -> None:
    assert compare(tiny_onnx_model, blurry_model, clinic, tmp_path / "b.json") == 0
    assert json.loads((tmp_path / "b.json").read_text())["verdict"] == "better"
    assert compare(tiny_onnx_model, tiny_onnx_model, clinic, tmp_path / "s.json") == 0
    assert json.loads((tmp_path / "s.json").read_text())["verdict"] == "no different"


def test_too_few_frames_is_no_judgement(
    tmp_path, tiny_onnx_model, blurry_model, capsys: pytest.CaptureFixture
) -> None:
    folder = phantom_folder(tmp_path / "few", 5)
    assert compare(blurry_model, tiny_onnx_model, folder, tmp_path / "f.json") == 0
    assert json.loads((tmp_path / "f.json").read_text())["verdict"] == "too few frames"
    assert "verdict: too few frames" in capsys.readouterr().err


def test_help_states_the_rule(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "paired bootstrap" in text and "wholly below 0" in text and "Exit code 3" in text


def test_json_output_that_is_the_candidate_model_is_refused_before_scoring(
    clinic: Path, tiny_onnx_model: Path, tmp_path: Path, capsys
) -> None:
    candidate = tmp_path / "candidate.onnx"
    candidate.write_bytes(tiny_onnx_model.read_bytes())
    before = candidate.read_bytes()
    argv = ["compare", str(candidate), "--against", str(tiny_onnx_model), str(clinic)]
    code = cli.main([*argv, "--mask-label", "2", "--json", str(candidate)])
    assert code == 2 and candidate.read_bytes() == before
    assert "--json" in capsys.readouterr().err
