"""benchmarks/speed.py: the timing helpers and the markdown table."""

from __future__ import annotations

import speed


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
        "| peak memory (RSS) of `hc-studio measure` | 310 MiB |",
        "| PNG decode of 800x540 (cv2.imread, grey) | 2.25 ms |",
    ):
        assert expected in text
