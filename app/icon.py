"""HC Studio's application icon, from the PNG set in resources/icons/."""

from __future__ import annotations

import contextlib
from importlib import resources

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

ICON_SIZES = (16, 32, 48, 64, 128, 256)
DESKTOP_FILE_NAME = "hc-studio"  # packaging/linux/hc-studio.desktop; the Wayland app id


def app_icon() -> QIcon:
    """The icon with every size found (an empty QIcon when the icon files are not installed)."""
    icon = QIcon()
    with contextlib.suppress(ModuleNotFoundError, FileNotFoundError):
        folder = resources.files("hc_studio.resources") / "icons"
        for size in ICON_SIZES:
            png = folder / f"hc-studio-{size}.png"
            if png.is_file():
                icon.addFile(str(png), QSize(size, size))
    return icon
