"""Entry point of the frozen HC Studio bundle.

`hc-studio COMMAND ...` runs the command as the installed `hc-studio` does (`hc_studio.app.entry`);
no arguments opens the window (a double-click or a desktop launcher gives none).

In the bundle `sys.executable` is this program, not a Python interpreter, yet the window starts
child Pythons the usual way: `-c CODE` (the Train tab asks whether torch sees a GPU) and
`-m hc_studio.core.cli train ...` (the training process). Both are answered here, so they behave
as with an interpreter: without torch in the bundle the probe fails and the Train tab says that
training is not available, instead of this program starting a second window.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

GUI_COMMAND = "gui"
EXIT_USAGE = 2


def run_code(code: str, arguments: Sequence[str]) -> int:
    """`python -c CODE ARGS...`: run `code` as the main module; 1 on an uncaught exception."""
    sys.argv = ["-c", *arguments]
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(code, "<string>", "exec"), namespace)
    except SystemExit as stop:
        return _exit_code(stop)
    except Exception:  # a child interpreter prints the traceback and exits 1
        import traceback

        traceback.print_exc()
        return 1
    return 0


def run_module(module: str, arguments: Sequence[str]) -> int:
    """`python -m MODULE ARGS...`: run `module` as `__main__`."""
    sys.argv = [module, *arguments]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        return _exit_code(stop)
    except ImportError as error:
        print(f"hc-studio: {module}: not in this bundle ({error})", file=sys.stderr)
        return 1
    return 0


def _exit_code(stop: SystemExit) -> int:
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `argv` (default: sys.argv[1:]); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-c"], ["-m"]):
        if len(argv) < 2:
            print(f"hc-studio: {argv[0]} needs an argument", file=sys.stderr)
            return EXIT_USAGE
        runner = run_code if argv[0] == "-c" else run_module
        return runner(argv[1], argv[2:])
    from hc_studio.app.entry import main as hc_studio_main

    return hc_studio_main(argv or [GUI_COMMAND])


if __name__ == "__main__":
    sys.exit(main())
