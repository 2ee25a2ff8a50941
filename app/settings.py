"""What the window remembers between runs (QSettings): folders, recent files, model, overlays."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

ORGANISATION = "HC Studio"
APPLICATION = "HC Studio"
MAX_RECENT_FILES = 10

# Overlay switches and opacities, with their defaults.
OVERLAY_DEFAULTS: dict[str, bool] = {"mask": True, "ellipse": True, "axes": True}
OPACITY_DEFAULTS: dict[str, float] = {"mask": 0.35, "lines": 1.0}


def _as_bool(value: object, default: bool) -> bool:
    # QSettings' INI backend gives strings back ("true"/"false").
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _as_float(value: object, default: float) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


class AppSettings:
    """Typed access to the application's QSettings.

    Tests pass their own QSettings (an INI file in a temporary folder) so that they never touch
    the user's settings.
    """

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._store = qsettings if qsettings is not None else QSettings(ORGANISATION, APPLICATION)

    def sync(self) -> None:
        self._store.sync()

    # Folders -----------------------------------------------------------------------------------
    def last_folder(self, purpose: str) -> str:
        """The folder last used for `purpose` ("open", "export", "labelled", ...), or home."""
        value = self._store.value(f"folders/{purpose}")
        if value and Path(str(value)).is_dir():
            return str(value)
        return str(Path.home())

    def set_last_folder(self, purpose: str, path: str | Path) -> None:
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        self._store.setValue(f"folders/{purpose}", str(folder))

    # Recent files ------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self._store.value("recent_files")
        if not value:
            return []
        items = [value] if isinstance(value, str) else list(value)
        return [str(item) for item in items if str(item)]

    def add_recent_file(self, path: str | Path) -> None:
        path = str(path)
        items = [item for item in self.recent_files() if item != path]
        self._store.setValue("recent_files", [path, *items][:MAX_RECENT_FILES])

    def clear_recent_files(self) -> None:
        self._store.remove("recent_files")

    # Model -------------------------------------------------------------------------------------
    def model_path(self) -> str | None:
        """The model chosen by the user ("use this model"), or None for the shipped one."""
        value = self._store.value("model/path")
        return str(value) if value else None

    def set_model_path(self, path: str | Path | None) -> None:
        if path is None:
            self._store.remove("model/path")
        else:
            self._store.setValue("model/path", str(path))

    def device(self) -> str:
        value = str(self._store.value("model/device") or "auto")
        return value if value in ("auto", "cpu", "cuda") else "auto"

    def set_device(self, device: str) -> None:
        self._store.setValue("model/device", device)

    # Training runs -----------------------------------------------------------------------------
    def runs_folder(self) -> Path:
        """Where training runs are kept (default: the user's data folder, `runs/`)."""
        value = self._store.value("training/runs_folder")
        if value:
            return Path(str(value))
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        return Path(base or Path.home() / ".hc-studio") / "runs"

    def set_runs_folder(self, path: str | Path) -> None:
        self._store.setValue("training/runs_folder", str(path))

    # Overlays ----------------------------------------------------------------------------------
    def overlay_visible(self, name: str) -> bool:
        return _as_bool(self._store.value(f"overlays/{name}"), OVERLAY_DEFAULTS[name])

    def set_overlay_visible(self, name: str, visible: bool) -> None:
        self._store.setValue(f"overlays/{name}", bool(visible))

    def overlay_opacity(self, name: str) -> float:
        value = _as_float(self._store.value(f"opacity/{name}"), OPACITY_DEFAULTS[name])
        return min(1.0, max(0.0, value))

    def set_overlay_opacity(self, name: str, opacity: float) -> None:
        self._store.setValue(f"opacity/{name}", float(opacity))

    # Window ------------------------------------------------------------------------------------
    def window_geometry(self) -> QByteArray | None:
        value = self._store.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_window_geometry(self, geometry: QByteArray) -> None:
        self._store.setValue("window/geometry", geometry)

    def window_state(self) -> QByteArray | None:
        value = self._store.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_window_state(self, state: QByteArray) -> None:
        self._store.setValue("window/state", state)

    def current_tab(self) -> int:
        try:
            return int(self._store.value("window/tab") or 0)
        except (TypeError, ValueError):
            return 0

    def set_current_tab(self, index: int) -> None:
        self._store.setValue("window/tab", int(index))

    # The operator (who accepts, in the correction log and the report) -------------------------
    def operator(self) -> str:
        """The operator's name as set in the window, else the OS user name."""
        value = str(self._store.value("operator/name") or "").strip()
        return value or _os_user()

    def set_operator(self, name: str) -> None:
        self._store.setValue("operator/name", name.strip())


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment nor the password database
        return "unknown"
