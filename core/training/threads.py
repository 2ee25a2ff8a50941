"""How many CPU threads torch should use for training.

More threads are not always faster: on some virtual machines the threads of one operation wait
on each other so long that two threads run a step several times slower than one. `auto` times a
small convolution with one thread and with every core and keeps the faster.

Training on the CPU also flushes denormal floats to zero: weights and optimiser moments that
decay towards zero reach the denormal range, where x86 arithmetic is many times slower (an
EfficientNet-Lite0 run slowed from 10 to 4.4 images a second over 2,400 steps with 4 % of its
weights denormal). Values below 1.2e-38 never change what a network outputs.
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F

PROBE_REPEATS = 5
MIN_GAIN = 0.8  # more threads must cut the probe's time by at least 20 %


def _probe_seconds(threads: int) -> float:
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 16, 96, 144, generator=generator)
    weight = torch.rand(16, 16, 3, 3, generator=generator)
    F.conv2d(images, weight, padding=1)  # first call: kernel selection, not timed
    times = []
    for _ in range(PROBE_REPEATS):
        start = time.perf_counter()
        F.conv2d(images, weight, padding=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def choose_threads(requested: int, processes_on_this_machine: int = 1) -> int:
    """`requested` if > 0, else 1 or all cores (shared among processes), whichever is faster."""
    if requested > 0:
        return requested
    cores = max(1, (os.cpu_count() or 1) // max(1, processes_on_this_machine))
    if cores == 1:
        return 1
    one = _probe_seconds(1)
    many = _probe_seconds(cores)
    return cores if many < MIN_GAIN * one else 1


def start_cpu_training(requested: int, processes_on_this_machine: int = 1) -> int:
    """Set torch up to train on the CPU (threads from `choose_threads`, denormals flushed to
    zero); returns the thread count. `end_cpu_training` undoes it."""
    threads = choose_threads(requested, processes_on_this_machine)
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    return threads


def end_cpu_training(threads_before: int) -> None:
    """Undo `start_cpu_training` in this process (a training run called in-process, as tests do)."""
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads_before)
