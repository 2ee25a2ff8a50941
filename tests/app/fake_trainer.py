"""A stand-in for `hc-studio train` that speaks the same JSON lines, for the Train tab's tests.

Options read: --out RUN_DIR, --iterations N, --resume. One progress line every 50 ms; a stop
line on stdin ends it with `done` (stopped early). With --ignore-stop it never stops by itself
(the window must terminate it).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from hc_studio.core.events import Done, EventWriter, Progress, Start, Validation
from hc_studio.core.run_folder import RunFolder
from hc_studio.core.training_settings import DataSettings, TrainSettings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--ignore-stop", action="store_true")
    args, _ = parser.parse_known_args()
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(run_dir)
    folder.write_run_file(TrainSettings(iterations=args.iterations), DataSettings())
    writer = EventWriter(folder.events_file)
    stop = threading.Event()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if json.loads(line).get("cmd") == "stop":
                stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    total = args.iterations
    writer.emit(
        Start(
            method="fake",
            run_dir=str(run_dir),
            total_iterations=total,
            counts={"labelled": 3, "unlabelled": 2},
        )
    )
    iteration = 0
    while iteration < total:
        if stop.is_set() and not args.ignore_stop:
            break
        iteration += 1
        losses = {"loss": 1.0 / iteration, "sup": 0.8 / iteration, "weight": 0.5}
        writer.emit(
            Progress(
                iteration=iteration,
                total_iterations=total,
                losses=losses,
                lr=0.01,
                images_per_s=10.0,
                eta_s=0.05 * (total - iteration),
            )
        )
        if iteration % 5 == 0:
            writer.emit(
                Validation(
                    iteration=iteration,
                    dice=0.5 + iteration / 100,
                    hd95_mm=3.0,
                    hc_mae_mm=10.0 / iteration,
                    best=True,
                )
            )
        time.sleep(0.05)
    folder.model_file.write_bytes(b"not really a model")
    writer.emit(
        Done(
            iteration=iteration,
            stopped_early=iteration < total,
            best_dice=0.6,
            best_hc_mae_mm=2.0,
            onnx_path=str(folder.model_file),
        )
    )
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
