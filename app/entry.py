"""The installed `hc-studio` program: core's command table plus the window's `gui` command.

Core never names the app (the layers contract), so the entry point lives here, one layer up: it
adds `gui` to `hc_studio.core.cli.COMMANDS` and runs core's dispatcher with the whole table.
Importing this module loads no Qt; `gui` imports it only when chosen.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..core import cli

COMMANDS: dict[str, str] = {**cli.COMMANDS, "gui": "hc_studio.app.cli"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hc-studio` with every command, the window's included; returns the exit code."""
    return cli.main(argv, COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
