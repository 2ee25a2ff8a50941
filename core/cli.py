"""The `hc-studio` command: subcommands registered from a table, imported only when needed.

Each command module provides `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`,
and imports heavy libraries (torch, Qt, onnxruntime) only inside `run`, so `hc-studio measure`
never loads torch or Qt. A module that is not there (not installed) is left out.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from .io.frame import FrameReadError

PROG = "hc-studio"
COMMANDS: dict[str, str] = {
    "measure": "hc_studio.core.commands.measure",
    "fit-annotations": "hc_studio.core.commands.fit_annotations",
    "evaluate": "hc_studio.core.commands.evaluate",
    "train": "hc_studio.core.training.commands.train",
    "export": "hc_studio.core.training.commands.export",
    "pretrain": "hc_studio.core.training.commands.pretrain",
    "gui": "hc_studio.app.cli",
}
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def load_command(name: str) -> ModuleType | None:
    """The module of command `name`, or None when that module does not exist."""
    module_name = COMMANDS[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only "this command is not there" is skipped; a missing dependency inside it is a bug.
        if error.name and (module_name + ".").startswith(error.name + "."):
            return None
        raise


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that command's module is imported."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fetal head circumference from ultrasound frames.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when a command fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else [only]:
        module = load_command(name)
        if module is None:
            continue
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in argv (the first word that is not an option), if it is known."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hc-studio`; returns the exit code (0 ok, 1 some frames failed, 2 usage/errors)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_chosen_command(argv))
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except (FrameReadError, ValueError, OSError) as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
