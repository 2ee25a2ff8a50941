"""benchmarks/within_patient.py: the reference's and a model's frame-level error from frames of
one patient."""

from __future__ import annotations

import json

import numpy as np
import pytest
import within_patient
from protocol_eval import FrameScore, write_per_frame


def frame(patient: str, name: str, reference: float, model: float | None) -> FrameScore:
    return FrameScore(
        file=f"{patient}_{name}HC.png",
        patient=patient,
        pixel_mm=0.1,
        status="ok" if model is not None else "no head",
        hc_ref_mm=reference,
        hc_pred_mm=model,
        hc_diff_mm=None if model is None else model - reference,
    )


def simulated(patients: int, seed: int = 0) -> list[FrameScore]:
    """Two frames a patient: the head differs between them (SD 1 mm), the reference errs by
    SD 1 mm a frame, the model by SD 2 mm a frame and by SD 1 mm on every frame of a patient.
    (The split's own noise grows with the head's difference between frames: with SD 3 mm, 2000
    pairs put the reference's SD anywhere in about 0-0.8 mm.)"""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(patients):
        head, bias = rng.uniform(100, 300), rng.normal(0, 1.0)
        for name in ("", "2"):
            true_hc = head + rng.normal(0, 1.0)
            reference = true_hc + rng.normal(0, 1.0)
            model = true_hc + bias + rng.normal(0, 2.0)
            frames.append(frame(f"{index:03d}", name, reference, model))
    return frames


def test_the_split_recovers_the_errors_it_was_made_of() -> None:
    summary = within_patient.within_patient(within_patient.frame_pairs(simulated(2000)), draws=20)
    values = {name: stat["value"] for name, stat in summary["statistics"].items()}
    assert values["reference_frame_sd_mm"] == pytest.approx(1.0, abs=0.1)
    assert values["model_frame_sd_mm"] == pytest.approx(2.0, abs=0.1)
    assert values["error_frame_level_sd_mm"] == pytest.approx(np.hypot(1.0, 2.0), abs=0.1)
    assert values["error_patient_level_sd_mm"] == pytest.approx(1.0, abs=0.15)
    # frame-level and patient-level parts make up the whole error
    total = np.hypot(values["error_frame_level_sd_mm"], values["error_patient_level_sd_mm"])
    assert values["error_rms_mm"] == pytest.approx(total, abs=0.1)
    assert summary["pairs"] == 2000 and summary["patients"] == 2000


def test_a_model_equal_to_the_reference_has_no_error_of_its_own() -> None:
    frames = [
        frame(f"{i:03d}", name, 150.0 + i + 2.0 * k, 150.0 + i + 2.0 * k)
        for i in range(5)
        for k, name in enumerate(("", "2"))
    ]
    statistics = within_patient.within_patient(within_patient.frame_pairs(frames), draws=20)[
        "statistics"
    ]
    assert statistics["model_frame_sd_mm"]["value"] == 0.0
    assert statistics["reference_frame_sd_mm"]["value"] == 0.0
    assert statistics["difference_correlation"]["value"] == pytest.approx(1.0)
    assert statistics["error_rms_mm"]["value"] == 0.0


def test_pairs_are_every_two_measured_frames_of_one_patient() -> None:
    frames = [
        frame("001", "", 100.0, 101.0),
        frame("001", "2", 102.0, 101.5),
        frame("001", "3", 99.0, 98.0),
        frame("002", "", 150.0, 151.0),  # alone: no pair
        frame("003", "", 200.0, 201.0),
        frame("003", "2", 203.0, None),  # not measured: no pair
    ]
    pairs = within_patient.frame_pairs(frames)
    assert [(p.first, p.second) for p in pairs] == [
        ("001_HC.png", "001_2HC.png"),
        ("001_HC.png", "001_3HC.png"),
        ("001_2HC.png", "001_3HC.png"),
    ]
    assert pairs[0].reference_difference == -2.0 and pairs[0].model_difference == -0.5
    with pytest.raises(ValueError, match="too few"):
        within_patient.within_patient(pairs[:2])
    with pytest.raises(ValueError, match="more than once: 001_HC.png"):
        within_patient.frame_pairs(frames + frames[:1])


def test_command_reads_several_sides_and_names_a_missing_model(tmp_path, capsys) -> None:
    frames = simulated(40, seed=1)
    first, second = tmp_path / "validation.csv", tmp_path / "test.csv"
    write_per_frame(first, {"m.onnx": frames[:40]})
    write_per_frame(second, {"m.onnx": frames[40:]})
    out = tmp_path / "within.json"
    assert (
        within_patient.main([str(first), str(second), "--model", "m.onnx", "--json", str(out)]) == 0
    )
    summary = json.loads(out.read_text())
    assert summary["pairs"] == 40 and summary["sources"] == ["validation.csv", "test.csv"]
    expected = within_patient.within_patient(within_patient.frame_pairs(frames), draws=20)
    value = summary["statistics"]["model_frame_sd_mm"]["value"]
    assert value == pytest.approx(expected["statistics"]["model_frame_sd_mm"]["value"])

    assert within_patient.main([str(first), "--model", "other.onnx"]) == 2
    assert "validation.csv" in capsys.readouterr().err
