"""Desktop entry, AppStream metainfo, icons and the scripts around the bundle (no build)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LINUX_DIR = REPO_ROOT / "packaging" / "linux"
ICONS_DIR = REPO_ROOT / "resources" / "icons"
DESKTOP_FILE = LINUX_DIR / "hc-studio.desktop"
METAINFO_FILE = LINUX_DIR / "org.hcstudio.HCStudio.metainfo.xml"
ICON_SIZES = (16, 32, 48, 64, 128, 256)


def _desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_desktop_entry_starts_the_window_with_the_icon() -> None:
    entry = _desktop_entry(DESKTOP_FILE)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "HC Studio"
    assert entry["Exec"].split()[:2] == ["hc-studio", "gui"]
    assert entry["Icon"] == "hc-studio"
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";") and "MedicalSoftware" in entry["Categories"]


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils")
def test_desktop_entry_validates() -> None:
    result = subprocess.run(
        ["desktop-file-validate", str(DESKTOP_FILE)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


def test_metainfo_names_the_desktop_entry_licence_and_version() -> None:
    root = ET.parse(METAINFO_FILE).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    component_id = root.findtext("id")
    assert METAINFO_FILE.name == f"{component_id}.metainfo.xml"
    assert (LINUX_DIR / root.findtext("launchable")).is_file()
    project = _pyproject()["project"]
    assert root.findtext("project_license") == project["license"]["text"]
    versions = [release.get("version") for release in root.iter("release")]
    assert project["version"] in versions
    assert root.findtext("icon") == _desktop_entry(DESKTOP_FILE)["Icon"]


@pytest.mark.skipif(not shutil.which("appstreamcli"), reason="appstream")
def test_metainfo_validates() -> None:
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(METAINFO_FILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icon_png_has_its_size_and_transparency(size: int) -> None:
    image = cv2.imread(str(ICONS_DIR / f"hc-studio-{size}.png"), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == (size, size, 4)
    alpha = image[:, :, 3]
    assert alpha[0, 0] == 0  # transparent corner (rounded square)
    assert alpha[size // 2, size // 2] == 255


def test_icon_svg_is_a_square_drawing() -> None:
    root = ET.parse(ICONS_DIR / "hc-studio.svg").getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 256 256"


@pytest.mark.qt
def test_icon_pngs_are_rendered_from_the_svg(qapp, make_icons, tmp_path: Path) -> None:
    """The committed PNGs are up to date with the SVG (re-run packaging/make_icons.py)."""
    assert tuple(make_icons.ICON_SIZES) == ICON_SIZES
    for path in make_icons.render_icons(ICONS_DIR / "hc-studio.svg", tmp_path, (32, 256)):
        fresh = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.int16)
        committed = cv2.imread(str(ICONS_DIR / path.name), cv2.IMREAD_UNCHANGED).astype(np.int16)
        assert np.abs(fresh - committed).mean() < 1.0, path.name


@pytest.mark.qt
def test_the_window_icon_has_every_size(qapp) -> None:
    from hc_studio.app.icon import ICON_SIZES as APP_ICON_SIZES
    from hc_studio.app.icon import app_icon
    from PySide6.QtCore import QSize

    icon = app_icon()
    assert not icon.isNull()
    assert tuple(APP_ICON_SIZES) == ICON_SIZES
    assert {QSize(16, 16), QSize(256, 256)} <= set(icon.availableSizes())


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, **kwargs)


@pytest.fixture
def fake_bundle(tmp_path: Path) -> Path:
    """A bundle folder with a stand-in program and the staged desktop files."""
    bundle = tmp_path / "unpacked here" / "hc-studio"
    bundle.mkdir(parents=True)
    program = bundle / "hc-studio"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    staged = _run(["sh", str(LINUX_DIR / "stage-desktop-files.sh"), str(bundle)])
    assert staged.returncode == 0, staged.stderr
    return bundle


def test_install_desktop_entry_points_the_menu_at_the_bundle(fake_bundle: Path, tmp_path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    installed = _run(["sh", str(fake_bundle / "install-desktop-entry.sh")], env=env)
    assert installed.returncode == 0, installed.stderr
    data = home / ".local" / "share"
    entry = _desktop_entry(data / "applications" / "hc-studio.desktop")
    assert entry["Exec"] == f'"{fake_bundle}/hc-studio" gui %F'
    assert entry["TryExec"] == f"{fake_bundle}/hc-studio"
    assert (data / "icons/hicolor/256x256/apps/hc-studio.png").is_file()
    assert (data / "icons/hicolor/scalable/apps/hc-studio.svg").is_file()
    assert (data / "metainfo/org.hcstudio.HCStudio.metainfo.xml").is_file()
    assert (home / ".local/bin/hc-studio").resolve() == fake_bundle / "hc-studio"
    if shutil.which("desktop-file-validate"):
        check = _run(["desktop-file-validate", str(data / "applications" / "hc-studio.desktop")])
        assert check.returncode == 0 and check.stdout.strip() == "", check.stdout

    removed = _run(["sh", str(fake_bundle / "install-desktop-entry.sh"), "--uninstall"], env=env)
    assert removed.returncode == 0, removed.stderr
    assert not (data / "applications" / "hc-studio.desktop").exists()
    assert not (data / "icons/hicolor/48x48/apps/hc-studio.png").exists()
    assert not (home / ".local/bin/hc-studio").exists()


@pytest.mark.parametrize(
    "script",
    ["build.sh", "smoke_test.sh", "linux/install-desktop-entry.sh", "linux/stage-desktop-files.sh"],
)
def test_shell_scripts_parse_and_are_executable(script: str) -> None:
    path = REPO_ROOT / "packaging" / script
    assert os.access(path, os.X_OK)
    assert _run(["bash", "-n", str(path)]).returncode == 0


def test_build_script_states_its_prerequisite_and_flags() -> None:
    shown = _run(["bash", str(REPO_ROOT / "packaging" / "build.sh"), "--help"])
    assert shown.returncode == 0
    assert 'pip install -e ".[package]"' in shown.stdout
    assert "--with-cuda" in shown.stdout and "--with-torch" in shown.stdout
    refused = _run(["bash", str(REPO_ROOT / "packaging" / "build.sh"), "--no-such-flag"])
    assert refused.returncode == 2 and "unknown option" in refused.stderr


def test_smoke_test_says_when_there_is_no_bundle(tmp_path: Path) -> None:
    result = _run(["bash", str(REPO_ROOT / "packaging" / "smoke_test.sh"), str(tmp_path / "x")])
    assert result.returncode == 2 and "build it with packaging/build.sh" in result.stderr
