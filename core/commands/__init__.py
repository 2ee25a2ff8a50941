"""Subcommands of `hc-studio` (see `hc_studio.core.cli`).

Each module has `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`; heavy
libraries are imported inside `run` only.
"""
