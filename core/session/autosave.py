"""The session on disk: one atomic JSON file in a per-user folder, offered back at start.

The folder is passed in (the app asks `default_state_dir`; tests give a temporary one). A file
that cannot be read is moved aside (never overwritten) and the reason is reported.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from ..atomic import atomic_write
from .session import MeasureSession

SESSION_FILE = "session.json"
APP_FOLDER = "hc-studio"


def default_state_dir(
    environ: Mapping[str, str] = os.environ, home: Path | None = None, platform: str = sys.platform
) -> Path:
    """Where the session is kept: `$XDG_STATE_HOME/hc-studio`, else `~/.local/state/hc-studio`
    (on Windows `%LOCALAPPDATA%\\hc-studio`)."""
    home = home if home is not None else Path.home()
    if platform.startswith("win") and environ.get("LOCALAPPDATA"):
        return Path(environ["LOCALAPPDATA"]) / APP_FOLDER
    state_home = environ.get("XDG_STATE_HOME", "")
    if state_home and Path(state_home).is_absolute():  # the XDG spec: ignore relative paths
        return Path(state_home) / APP_FOLDER
    return home / ".local" / "state" / APP_FOLDER


def session_path(folder: str | Path) -> Path:
    return Path(folder) / SESSION_FILE


def save_session(folder: str | Path, session: MeasureSession, with_frames: bool = True) -> Path:
    """Write the session atomically (a crash leaves the previous file whole); returns the path."""
    path = session_path(folder)
    data = session.to_json(with_frames=with_frames)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, allow_nan=False)
    return path


def read_saved_session(folder: str | Path) -> tuple[dict | None, str | None]:
    """(the saved data, None), or (None, None) when there is none, or (None, why) when the file
    cannot be read: it is then renamed `session.json.unreadable` so that it is neither lost nor
    overwritten."""
    path = session_path(folder)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except OSError as error:
        return None, f"{path}: {error.strerror or error}"
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        MeasureSession().restore(data)  # a trial run: raises on data that cannot be used
    except (ValueError, KeyError, TypeError) as error:
        aside = path.with_name(SESSION_FILE + ".unreadable")
        try:
            os.replace(path, aside)
        except OSError:
            aside = path
        return None, f"{path}: the saved session cannot be read ({error}); kept as {aside.name}"
    return data, None


def saved_frame_count(data: dict) -> tuple[int, int]:
    """(frames with a result, frames accepted or rejected) in saved session data."""
    frames = data.get("frames", [])
    decided = sum(1 for f in frames if f.get("record", {}).get("accepted") is not None)
    return len(frames), decided
