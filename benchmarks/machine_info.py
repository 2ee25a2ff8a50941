"""A one-line description of the machine a benchmark ran on (CPU, cores, GPU, library versions)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else `platform.processor()`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def gpu_names() -> list[str]:
    """NVIDIA GPU names from nvidia-smi; empty when there is none (or no driver)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe_machine() -> dict[str, object]:
    """CPU model, usable cores, GPUs, OS, Python and the versions of torch and onnxruntime."""
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "gpus": gpu_names(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime-gpu") or _version("onnxruntime"),
    }


def machine_line(machine: dict[str, object]) -> str:
    """`describe_machine()` as one line for a report."""
    gpus = ", ".join(machine.get("gpus") or []) or "no GPU"  # type: ignore[arg-type]
    return (
        f"{machine.get('cpu')} ({machine.get('cores')} cores usable), {gpus}; "
        f"{machine.get('os')}, Python {machine.get('python')}, torch {machine.get('torch')}, "
        f"onnxruntime {machine.get('onnxruntime')}"
    )
