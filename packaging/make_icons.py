"""Render the PNG icon set from resources/icons/hc-studio.svg.

Usage: `python packaging/make_icons.py` (needs PySide6; runs without a display). The PNGs are
committed, so this is only needed after the SVG changes. Writes hc-studio-<N>.png for every N in
ICON_SIZES, each N x N pixels, RGBA with a transparent surround.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICON_SIZES = (16, 32, 48, 64, 128, 256)
ICONS_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"
SVG_NAME = "hc-studio.svg"


def png_name(size: int) -> str:
    """File name of the `size` x `size` PNG."""
    return f"hc-studio-{size}.png"


def render_icons(svg_path: Path, out_dir: Path, sizes: tuple[int, ...] = ICON_SIZES) -> list[Path]:
    """Render `svg_path` to one PNG per size in `out_dir`; returns the written paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(svg_path))
    if not renderer.isValid():
        raise ValueError(f"{svg_path}: not a valid SVG")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = out_dir / png_name(size)
        if not image.save(str(out), "PNG"):
            raise OSError(f"{out}: could not write the PNG")
        written.append(out)
    return written


def main() -> int:
    for path in render_icons(ICONS_DIR / SVG_NAME, ICONS_DIR):
        print(path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
