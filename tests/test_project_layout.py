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
    # The default model and the float weights it names (int8 cannot be trained from), no other.
    from hc_studio.core.inference import DEFAULT_MODEL_FILE
    from hc_studio.core.training.export_onnx import read_metadata

    default = ROOT / "models" / DEFAULT_MODEL_FILE
    named = read_metadata(default).get("hc_studio.float_weights")
    expected = {DEFAULT_MODEL_FILE} | ({named} if named else set())
    assert {path.name for path in (ROOT / "models").glob("*.onnx")} == expected
    assert (ROOT / "models" / "MODEL_CARD.md").is_file()
