"""The installed package holds every folder of the repository's code (non-editable installs too)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"core": "hc_studio.core", "app": "hc_studio.app", "models": "hc_studio.models"}


def _packages_on_disk() -> set[str]:
    found = {"hc_studio.resources"}
    for folder, prefix in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((prefix, *relative)))
    return found


def test_every_code_folder_is_listed_as_a_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    assert _packages_on_disk() <= listed, sorted(_packages_on_disk() - listed)


def test_the_default_model_and_its_card_ship_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["hc_studio.models"]
    assert "*.onnx" in patterns and "*.md" in patterns
    assert len(list((ROOT / "models").glob("*.onnx"))) == 1, "exactly one default model"
    assert (ROOT / "models" / "MODEL_CARD.md").is_file()
