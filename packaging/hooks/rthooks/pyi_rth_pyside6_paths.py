"""Run-time hook replacing PyInstaller's PySide6 hook (Linux bundle).

It sets the same Qt plugin and QML paths but does not import QtCore at start: the stock hook
imports it to add an embedded qt.conf, which PyPI's PySide6 wheels create themselves when
imported. So `hc-studio measure` does not load Qt (about 0.1 s at every start).
"""


def _set_qt_paths() -> None:
    import os
    import sys

    qt_dir = os.path.join(sys._MEIPASS, "PySide6", "Qt")
    os.environ["QT_PLUGIN_PATH"] = os.path.join(qt_dir, "plugins")
    os.environ["QML2_IMPORT_PATH"] = os.path.join(qt_dir, "qml")


_set_qt_paths()
del _set_qt_paths
