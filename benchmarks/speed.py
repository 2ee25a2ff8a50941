"""Measure how fast HC Studio measures frames on this machine, in one run.

Reproduces the speed table of docs/benchmarks.md:

* the network alone, one frame at the model's input size: ONNX Runtime against torch eager mode
  for the same network (from `--checkpoint`; without one, an untrained U-Net of `--width`, which
  costs the same), each with one thread per usable core, torch under `inference_mode`; the median
  of `--repeat` calls after `--warmup` calls, and the ratio;
* end to end: `hc-studio measure` on the frames of `--frames` (read, segment, fit, write the CSV),
  the command's wall time divided by the frames measured (so start-up and model loading count),
  frames per second, and the peak resident memory of that process;
* the leanest loop doing the same job with the same model(s) over the same frames, in this
  process (`lean_loop`), and how many times slower `hc-studio measure` is. Why: the speed bound
  of the issue is that `hc-studio measure` stays within 1.3x of the leanest loop that does the
  same job with the same model (decode, resize, one onnxruntime call, threshold, ellipse fit),
  timed in the same run, so that the ratio, not an absolute figure of one machine, is what is
  checked; with a refining model (`hc_studio.refiner`) the loop does the second pass as well.
  The two are timed in `--rounds` alternating pairs (measure, then the loop) and the pair with
  the median ratio is reported, every pair's figures beside it: a virtual machine's speed drifts
  by a fifth within an hour, and a single pair timed minutes apart read that drift as overhead;
* the per-stage split of one frame (decode, inference, ellipse fit and biometry), median over
  `--stage-frames` frames, in this process;
* the PNG decode time of one frame (800×540 for HC18).

Prints a markdown table and writes everything as JSON.

    python benchmarks/speed.py --model ONNX [--checkpoint CKPT] --frames DIR --pixel-csv CSV
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from hc_studio.core.atomic import atomic_write
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.head_crop import CropWindow
from hc_studio.core.inference import ModelInfo, SegmentationEngine, cpu_threads
from hc_studio.core.io import find_frame_files, read_frame
from machine_info import describe_machine, machine_line, usable_cores

DEFAULT_JSON = Path("speed.json")


def time_calls(function: Callable[[], object], warmup: int, repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` calls of `function`, after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def summarise_ms(samples: list[float]) -> dict[str, float]:
    """median, 10th and 90th percentile and count of millisecond samples."""
    values = np.asarray(samples, dtype=float)
    return {
        "median_ms": float(np.median(values)),
        "p10_ms": float(np.percentile(values, 10)),
        "p90_ms": float(np.percentile(values, 90)),
        "n": int(values.size),
    }


# --- the network alone -----------------------------------------------------------------------


def onnx_session(model: Path, threads: int, device: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(model), options, providers=providers)
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise ValueError("onnxruntime could not start CUDA")
    return session


def torch_network(checkpoint: Path | None, width: int, dilated: bool):
    """(ExportWrapper in eval mode, description): the checkpoint's student, or an untrained
    U-Net of the given width (the same cost; its outputs are not compared)."""
    from hc_studio.models.networks import build_network
    from hc_studio.models.unet import ExportWrapper, UNet

    if checkpoint is not None:
        from hc_studio.core.training.checkpoint import load_checkpoint

        state = load_checkpoint(checkpoint)
        network = build_network(state["model"]["config"])
        network.load_state_dict(state["model"]["state"])
        description = f"{checkpoint.name} ({state['model']['config']})"
    else:
        network = UNet(width=width, dilated_bottleneck=dilated)
        description = f"untrained UNet(width={width}, dilated_bottleneck={dilated})"
    return ExportWrapper(network).eval(), description


def compare_network(args: argparse.Namespace, threads: int) -> dict:
    """ONNX Runtime vs torch eager on one (1, 1, h, w) input at the model's input size."""
    import torch

    engine = SegmentationEngine(args.model, device="cpu")
    height, width = engine.info.input_height, engine.info.input_width
    image = np.random.default_rng(0).random((1, 1, height, width), dtype=np.float32)
    session = onnx_session(args.model, threads, args.device)
    input_name = session.get_inputs()[0].name
    onnx_ms = time_calls(lambda: session.run(None, {input_name: image}), args.warmup, args.repeat)

    torch.set_num_threads(threads)
    wrapper, description = torch_network(args.checkpoint, args.width, args.dilated_bottleneck)
    torch_device = torch.device("cuda" if args.device == "cuda" else "cpu")
    wrapper = wrapper.to(torch_device)
    tensor = torch.from_numpy(image).to(torch_device)

    def torch_call():
        with torch.inference_mode():
            output = wrapper(tensor)
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
        return output

    torch_ms = time_calls(torch_call, args.warmup, args.repeat)
    result = {
        "input_hw": [height, width],
        "threads": threads,
        "device": args.device,
        "torch_network": description,
        "onnxruntime": summarise_ms(onnx_ms),
        "torch_eager": summarise_ms(torch_ms),
    }
    result["torch_over_onnx"] = (
        result["torch_eager"]["median_ms"] / result["onnxruntime"]["median_ms"]
    )
    if args.checkpoint is not None:  # same weights: the outputs must agree too
        (onnx_out,) = session.run(None, {input_name: image})[:1]
        torch_out = torch_call().float().cpu().numpy()
        result["max_abs_difference"] = float(np.abs(onnx_out - torch_out).max())
    return result


# --- end to end ------------------------------------------------------------------------------


def frame_files(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(find_frame_files([folder]))
    return files[:limit] if limit else files


def count_csv_rows(path: Path) -> int:
    with path.open(newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def measure_end_to_end(files: list[Path], args: argparse.Namespace, work_dir: Path) -> dict:
    """`hc-studio measure` over `files` in a child process: wall time, frames, peak RSS.

    Only `hc-studio measure` children may be waited for before it: RUSAGE_CHILDREN's ru_maxrss
    is the largest peak of all waited-for children (with several rounds, the largest of them).
    """
    out_csv = work_dir / "measure.csv"
    command = [sys.executable, "-m", "hc_studio.core.cli", "measure", *map(str, files)]
    command += ["--model", str(args.model), "--pixel-csv", str(args.pixel_csv)]
    command += ["--device", args.device, "--out", str(out_csv)]
    log_path = work_dir / "measure.log"
    started = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    wall_s = time.perf_counter() - started
    if not out_csv.is_file():
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"hc-studio measure failed (exit code {code}): {' / '.join(tail)}")
    frames = count_csv_rows(out_csv)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {
        "files": len(files),
        "frames": frames,
        "exit_code": code,
        "wall_s": wall_s,
        "ms_per_frame": 1000.0 * wall_s / max(frames, 1),
        "frames_per_s": frames / wall_s if wall_s > 0 else None,
        "peak_rss_mib": peak_kib / 1024.0,
    }


def timed_pair(files: list[Path], args: argparse.Namespace, threads: int) -> tuple[dict, dict]:
    """One round: `hc-studio measure` over `files` (a child process), then the leanest loop."""
    with tempfile.TemporaryDirectory(prefix="hc-speed-") as work_dir:
        end_to_end = measure_end_to_end(files, args, Path(work_dir))
    return end_to_end, lean_loop(files, args.model, threads, args.device)


def median_pair(rounds: list[tuple[dict, dict]]) -> tuple[dict, dict]:
    """The round whose measure / lean ratio is the median (of an even count, the upper middle,
    the less favourable one): one coherent pair, timed together, rather than medians taken from
    different rounds."""
    if not rounds:
        raise ValueError("at least one round of timing is needed")
    ordered = sorted(rounds, key=lambda pair: pair[0]["ms_per_frame"] / pair[1]["ms_per_frame"])
    return ordered[len(ordered) // 2]


# --- the leanest loop ------------------------------------------------------------------------


def _network_input(image01: np.ndarray, info: ModelInfo) -> np.ndarray:
    """(1, 1, h, w) float32: the model's own normalisation of a 0..1 image (none for 0-1)."""
    if "mean" in info.normalisation:
        mean = float(info.normalisation["mean"])  # type: ignore[arg-type]
        std = float(info.normalisation["std"])  # type: ignore[arg-type]
        image01 = (image01 - mean) / std
    return np.ascontiguousarray(image01, dtype=np.float32)[np.newaxis, np.newaxis]


class _LeanPass:
    """One model of the lean loop: its own onnxruntime session, input name and threshold."""

    def __init__(self, engine: SegmentationEngine, threads: int, device: str) -> None:
        if engine.info.resize != "stretch":
            raise ValueError(f"{engine.model_path}: the lean loop handles 'stretch' models only")
        self.info = engine.info
        self.session = onnx_session(engine.model_path, threads, device)
        self.input_name = self.session.get_inputs()[0].name
        self.threshold = 0.0 if engine.info.output == "logits" else 0.5  # = probability 0.5

    def contour(self, image01: np.ndarray) -> np.ndarray | None:
        """One session.run, threshold, the largest external contour ((N, 1, 2) int32), or None
        when it has fewer than the 5 points cv2.fitEllipse needs."""
        feed = {self.input_name: _network_input(image01, self.info)}
        (scores,) = self.session.run(None, feed)[:1]
        mask = (scores[0, 0] > self.threshold).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not contours:
            return None
        largest = max(contours, key=cv2.contourArea)
        return largest if len(largest) >= 5 else None


def lean_loop(files: list[Path], model_path: Path, threads: int, device: str) -> dict:
    """The leanest loop doing `hc-studio measure`'s job with the same model(s), in this process.

    Sessions are created once (untimed) with `threads` intra-op threads, like the product's; one
    untimed warm-up frame; then, timed over `files`, per frame: `cv2.imread` grey, float32 / 255,
    `cv2.resize` INTER_AREA to the model's input size, one `session.run`, threshold at 0.5, the
    largest external contour, `cv2.fitEllipse`. When the model names a refiner
    (`hc_studio.refiner`) also: the `CropWindow` around that ellipse in frame pixels,
    `window.cut`, one refiner `session.run`, threshold, the contour mapped back to the frame,
    `cv2.fitEllipse`. No biometry, review checks or CSV: that is what the ratio prices.

    Returns ms_per_frame (timed wall time / frames), frames, and how many frames the last pass
    fitted. Only "stretch" models: a letterbox one would need the padding too (ValueError).
    """
    if not files:
        raise ValueError("the lean loop needs at least one frame")
    engine = SegmentationEngine(model_path, device="cpu", threads=1)  # metadata, checks, refiner
    first = _LeanPass(engine, threads, device)
    second = None if engine.refiner is None else _LeanPass(engine.refiner, threads, device)
    margin = engine.info.refine_margin
    net_h, net_w = first.info.input_height, first.info.input_width
    del engine

    def one_frame(path: Path) -> bool:
        """True when the last pass fitted an ellipse."""
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise ValueError(f"{path.name}: cv2.imread cannot read it")
        frame01 = grey.astype(np.float32) / 255.0
        contour = first.contour(cv2.resize(frame01, (net_w, net_h), interpolation=cv2.INTER_AREA))
        if contour is None:
            return False
        (cx, cy), (width, height), angle = cv2.fitEllipse(contour)
        if second is None:
            return True
        # cv2's box: full axis lengths in network pixels; each axis keeps its own scale.
        sx, sy = frame01.shape[1] / net_w, frame01.shape[0] / net_h
        ellipse_px = Ellipse.normalised(
            (cx + 0.5) * sx - 0.5,
            (cy + 0.5) * sy - 0.5,
            0.5 * width * sx,
            0.5 * height * sy,
            np.radians(angle),
        )
        size = second.info.input_height
        window = CropWindow.around(ellipse_px, margin)
        contour = second.contour(window.cut(frame01, size))
        if contour is None:
            return False
        cv2.fitEllipse(window.to_frame_xy(contour[:, 0, :], size).astype(np.float32))
        return True

    one_frame(files[0])  # warm-up: first-call allocations of the session(s)
    started = time.perf_counter()
    fitted = sum(one_frame(path) for path in files)
    wall_s = time.perf_counter() - started
    return {
        "frames": len(files),
        "fitted": int(fitted),
        "passes": 1 if second is None else 2,
        "threads": threads,
        "device": device,
        "wall_s": wall_s,
        "ms_per_frame": 1000.0 * wall_s / len(files),
    }


def stage_split(files: list[Path], model: Path, device: str, pixel_csv: Path) -> dict:
    """Median ms per frame of decode (`read_frame`), inference (`engine.predict`) and the rest of
    `measure_frame` (ellipse fit, biometry, review checks), over `files`."""
    from hc_studio.core.measure import measure_frame
    from hc_studio.core.spacing import SpacingPolicy, read_pixel_table

    engine = SegmentationEngine(model, device=device)
    policy = SpacingPolicy()
    policy.add_table(read_pixel_table(pixel_csv), applies_to=files)
    decode, inference, fit = [], [], []
    engine.predict(read_frame(files[0], 0).pixels)  # warm-up (first-call allocations)
    for path in files:
        spacing = policy.override_for(path)
        started = time.perf_counter()
        frame = read_frame(path, 0, spacing)
        decoded = time.perf_counter()
        engine.predict(frame.pixels)
        predicted = time.perf_counter()
        measure_started = time.perf_counter()
        measure_frame(frame, engine)
        measured = time.perf_counter()
        decode.append((decoded - started) * 1000.0)
        inference.append((predicted - decoded) * 1000.0)
        # measure_frame runs the network again: its own cost minus this frame's inference.
        fit.append(max(0.0, (measured - measure_started - (predicted - decoded)) * 1000.0))
    return {
        "frames": len(files),
        "decode_ms": statistics.median(decode),
        "inference_ms": statistics.median(inference),
        "fit_ms": statistics.median(fit),
    }


def png_decode(path: Path, repeat: int) -> dict:
    """Median ms of `cv2.imread` (grey) and of HC Studio's `read_frame` (to float 0..1)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path.name}: not a readable image")
    imread_ms = time_calls(lambda: cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), 3, repeat)
    read_frame_ms = time_calls(lambda: read_frame(path, 0), 3, repeat)
    return {
        "file": path.name,
        "size": f"{image.shape[1]}x{image.shape[0]}",
        "imread_ms": statistics.median(imread_ms),
        "read_frame_ms": statistics.median(read_frame_ms),
    }


# --- report ----------------------------------------------------------------------------------


def _ratio_label(result: dict) -> str:
    rounds = result.get("rounds") or []
    if len(rounds) < 2:
        return "hc-studio measure / leanest loop"
    each = ", ".join(f"{pair['measure_over_lean']:.2f}" for pair in rounds)
    return f"hc-studio measure / leanest loop (median of {len(rounds)} rounds: {each})"


def markdown(result: dict) -> str:
    net, e2e, stages, png = (result[k] for k in ("network", "end_to_end", "stages", "png"))
    lean = result["lean_loop"]
    h, w = net["input_hw"]
    rows = [
        (f"ONNX Runtime, network only, 1×1×{h}×{w}", f"{net['onnxruntime']['median_ms']:.2f} ms"),
        ("torch eager (inference_mode), same network", f"{net['torch_eager']['median_ms']:.2f} ms"),
        ("torch eager / ONNX Runtime", f"{net['torch_over_onnx']:.2f}×"),
        (
            f"`hc-studio measure`, {e2e['frames']} frames, end to end",
            f"{e2e['ms_per_frame']:.1f} ms/frame, {e2e['frames_per_s']:.1f} frames/s",
        ),
        (
            "leanest loop (decode, resize, one onnxruntime call per pass, threshold, fit)",
            f"{lean['ms_per_frame']:.1f} ms/frame ({lean['passes']} pass(es), "
            f"{lean['frames']} frames, {lean['threads']} thread(s))",
        ),
        (_ratio_label(result), f"{result['measure_over_lean']:.2f}×"),
        (
            f"per frame: decode / inference / fit (median of {stages['frames']})",
            f"{stages['decode_ms']:.1f} / {stages['inference_ms']:.1f} / {stages['fit_ms']:.1f} ms",
        ),
        ("peak memory (RSS) of `hc-studio measure`", f"{e2e['peak_rss_mib']:.0f} MiB"),
        (f"PNG decode of {png['size']} (cv2.imread, grey)", f"{png['imread_ms']:.2f} ms"),
        (f"PNG decode of {png['size']} to float (read_frame)", f"{png['read_frame_ms']:.2f} ms"),
    ]
    lines = ["| what | value |", "| --- | --- |", *(f"| {a} | {b} |" for a, b in rows)]
    note = (
        f"Machine: {machine_line(result['machine'])}. Device {net['device']}, "
        f"{net['threads']} thread(s); medians of {net['onnxruntime']['n']} calls."
    )
    return "\n".join([note, "", *lines])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--model", type=Path, required=True, metavar="ONNX")
    add("--checkpoint", type=Path, metavar="CKPT", help="the same network's torch checkpoint")
    add("--width", type=int, default=16, help="U-Net width without --checkpoint (default 16)")
    add("--dilated-bottleneck", action="store_true", help="without --checkpoint")
    add("--frames", type=Path, required=True, metavar="DIR", help="frames for the end-to-end run")
    add("--pixel-csv", type=Path, required=True, metavar="CSV")
    add("--limit", type=int, help="use only the first N frames of DIR")
    add("--repeat", type=int, default=200, help="timed network calls (default 200)")
    add("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    add("--stage-frames", type=int, default=30, help="frames for the stage split (default 30)")
    add("--rounds", type=int, default=3, help="alternating measure / loop pairs (default 3)")
    add("--device", choices=("cpu", "cuda"), default="cpu")
    add("--threads", type=int, help="threads for both runtimes (default: usable cores)")
    add("--json", type=Path, default=DEFAULT_JSON, metavar="OUT", help="default speed.json")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files = frame_files(args.frames, args.limit)
    if not files:
        print(f"speed: {args.frames}: no frames found", file=sys.stderr)
        return 2
    threads = args.threads or usable_cores()
    try:
        rounds = [
            timed_pair(files, args, args.threads or cpu_threads()) for _ in range(args.rounds)
        ]
        end_to_end, lean = median_pair(rounds)
        result = {
            "machine": describe_machine(),
            "end_to_end": end_to_end,
            "lean_loop": lean,
            "measure_over_lean": end_to_end["ms_per_frame"] / lean["ms_per_frame"],
            "rounds": [
                {
                    "measure_ms_per_frame": pair[0]["ms_per_frame"],
                    "lean_ms_per_frame": pair[1]["ms_per_frame"],
                    "measure_over_lean": pair[0]["ms_per_frame"] / pair[1]["ms_per_frame"],
                }
                for pair in rounds
            ],
            "stages": stage_split(
                files[: args.stage_frames], args.model, args.device, args.pixel_csv
            ),
            "network": compare_network(args, threads),
            "png": png_decode(files[0], max(10, args.repeat // 4)),
        }
    except (ValueError, RuntimeError, OSError) as error:
        print(f"speed: {error}", file=sys.stderr)
        return 2
    with atomic_write(args.json) as handle:
        handle.write(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
