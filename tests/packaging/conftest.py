"""The packaging scripts are plain files in packaging/, not part of the installed package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGING_DIR = REPO_ROOT / "packaging"


def load_packaging_module(name: str) -> ModuleType:
    """Import packaging/<name>.py under the module name `packaging_<name>`."""
    module_name = f"packaging_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, PACKAGING_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def contents() -> ModuleType:
    return load_packaging_module("bundle_contents")


@pytest.fixture(scope="session")
def launcher() -> ModuleType:
    return load_packaging_module("launcher")


@pytest.fixture(scope="session")
def make_icons() -> ModuleType:
    return load_packaging_module("make_icons")
