"""benchmarks/speed.py: the timing helpers and the markdown table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import speed

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODEL = REPO_ROOT / "models" / "hc_head_ersr_v4.onnx"
SAMPLE_FRAMES = sorted((REPO_ROOT / "resources" / "samples").glob("*.png"))


def test_time_calls_times_only_the_repeats_after_warm_up() -> None:
    counter = []
    samples = speed.time_calls(lambda: counter.append(1), warmup=3, repeat=5)
    assert len(counter) == 8 and len(samples) == 5
    assert all(sample >= 0 for sample in samples)


def test_summarise_ms_gives_the_median_and_spread() -> None:
    summary = speed.summarise_ms([5.0, 1.0, 3.0, 2.0, 4.0])
    assert summary["median_ms"] == 3.0 and summary["n"] == 5
    assert summary["p10_ms"] < summary["median_ms"] < summary["p90_ms"]


def test_markdown_lists_every_figure() -> None:
    result = {
        "machine": {"cpu": "Test CPU", "cores": 2, "gpus": []},
        "network": {
            "input_hw": [256, 384],
            "threads": 2,
            "device": "cpu",
            "onnxruntime": {"median_ms": 10.0, "n": 200},
            "torch_eager": {"median_ms": 25.0, "n": 200},
            "torch_over_onnx": 2.5,
        },
        "end_to_end": {"frames": 335, "ms_per_frame": 40.0, "frames_per_s": 25.0,
                       "peak_rss_mib": 310.4},
        "lean_loop": {"frames": 335, "ms_per_frame": 32.0, "passes": 2, "threads": 2},
        "measure_over_lean": 1.25,
        "stages": {"frames": 30, "decode_ms": 6.0, "inference_ms": 12.0, "fit_ms": 9.5},
        "png": {"size": "800x540", "imread_ms": 2.25, "read_frame_ms": 4.5},
    }  # fmt: skip
    text = speed.markdown(result)
    assert "Test CPU (2 cores usable), no GPU" in text
    for expected in (
        "| ONNX Runtime, network only, 1×1×256×384 | 10.00 ms |",
        "| torch eager / ONNX Runtime | 2.50× |",
        "335 frames, end to end | 40.0 ms/frame, 25.0 frames/s |",
        "| 6.0 / 12.0 / 9.5 ms |",
        "| leanest loop (decode, resize, one onnxruntime call per pass, threshold, fit) "
        "| 32.0 ms/frame (2 pass(es), 335 frames, 2 thread(s)) |",
        "| hc-studio measure / leanest loop | 1.25× |",
        "| peak memory (RSS) of `hc-studio measure` | 310 MiB |",
        "| PNG decode of 800x540 (cv2.imread, grey) | 2.25 ms |",
    ):
        assert expected in text


def _with_metadata(source: Path, target: Path, entries: dict[str, str]) -> Path:
    import onnx

    model = onnx.load(str(source))
    kept = [entry for entry in model.metadata_props if entry.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in entries.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(target))
    return target


def model_pair(folder: Path) -> Path:
    """The shipped model naming a refiner beside it: the same network at a 224x224 input."""
    refiner = folder / "refiner.onnx"
    shutil.copyfile(SHIPPED_MODEL, refiner)
    _with_metadata(
        refiner, refiner, {"hc_studio.input_height": "224", "hc_studio.input_width": "224"}
    )
    return _with_metadata(SHIPPED_MODEL, folder / "first.onnx", {"hc_studio.refiner": refiner.name})


@pytest.mark.parametrize("paired", [False, True], ids=["plain model", "model with a refiner"])
def test_lean_loop_times_every_frame_with_one_or_two_passes(paired: bool, tmp_path: Path) -> None:
    assert len(SAMPLE_FRAMES) >= 3
    model = model_pair(tmp_path) if paired else SHIPPED_MODEL
    result = speed.lean_loop(SAMPLE_FRAMES[:3], model, threads=1, device="cpu")
    assert result["frames"] == 3 and result["passes"] == (2 if paired else 1)
    assert result["ms_per_frame"] > 0 and result["wall_s"] > 0
    assert result["fitted"] == 3  # every sample frame shows a head both passes find


def test_the_reported_pair_is_the_round_with_the_median_ratio_and_every_round_is_listed() -> None:
    def pair(measure_ms: float, lean_ms: float) -> tuple[dict, dict]:
        return {"ms_per_frame": measure_ms}, {"ms_per_frame": lean_ms}

    rounds = [pair(40.0, 20.0), pair(30.0, 25.0), pair(33.0, 25.0)]  # 2.0, 1.2, 1.32
    end_to_end, lean = speed.median_pair(rounds)
    assert (end_to_end["ms_per_frame"], lean["ms_per_frame"]) == (33.0, 25.0)
    # An even count reports the upper middle, the less favourable of the two.
    end_to_end, _ = speed.median_pair(rounds + [pair(26.0, 25.0)])
    assert end_to_end["ms_per_frame"] == 33.0
    with pytest.raises(ValueError):
        speed.median_pair([])
    result = {"rounds": [{"measure_over_lean": 1.2}, {"measure_over_lean": 1.32}]}
    assert speed._ratio_label(result) == (
        "hc-studio measure / leanest loop (median of 2 rounds: 1.20, 1.32)"
    )
    with pytest.raises(SystemExit):
        speed.parse_args(["--model", "m", "--frames", ".", "--pixel-csv", "c", "--rounds", "0"])
