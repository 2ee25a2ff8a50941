"""Import rules: core never loads Qt; measurement never loads torch; app sits above core."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "PySide6", "shiboken6", "pyqtgraph")


def test_import_linter_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports") or str(
        Path(sys.executable).with_name("lint-imports")
    )
    if not Path(lint_imports).exists():
        pytest.skip("import-linter is not installed")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def loaded_heavy_modules(code: str) -> list[str]:
    """Run `code` in a fresh interpreter; the heavy top-level packages it left in sys.modules."""
    probe = f"""
import json, sys
{code}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_core_modules_load_neither_torch_nor_qt() -> None:
    code = "\n".join(
        f"import hc_studio.core{suffix}"
        for suffix in ("", ".io", ".measure", ".inference", ".export", ".cli", ".dataset")
    )
    assert loaded_heavy_modules(code) == []


def test_measure_command_and_help_load_neither_torch_nor_qt(
    tmp_path: Path, tiny_onnx_model: Path, phantom
) -> None:
    import cv2

    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), (phantom.image * 255).astype("uint8"))
    argv = [
        "measure",
        str(frame),
        "--model",
        str(tiny_onnx_model),
        "--out",
        str(tmp_path / "m.csv"),
    ]
    code = f"""
import contextlib, io
from hc_studio.core.cli import build_parser, main
build_parser().format_help()  # --help imports every command module
with contextlib.redirect_stderr(io.StringIO()):
    assert main({argv!r}) == 0
"""
    assert loaded_heavy_modules(code) == []
