"""Every option of measure, evaluate, fit-annotations and compare says what it does and its
default."""

from __future__ import annotations

import argparse

import pytest
from hc_studio.core.cli import build_parser

COMMANDS = ("measure", "evaluate", "fit-annotations", "compare")


def command_parser(name: str) -> argparse.ArgumentParser:
    parser = build_parser(only=name)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[name]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_a_sentence_and_its_default(name: str) -> None:
    parser = command_parser(name)
    text = parser.format_help()  # expands %(default)s, fails on a bad format
    checked = 0
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        helptext = (action.help or "") % {"default": action.default}
        assert len(helptext.split()) >= 4, f"{name} {action.dest}: {helptext!r}"
        if action.option_strings:
            said = "(required)" if action.required else "default:"
            assert said in helptext, f"{name} {action.option_strings[0]} does not say {said}"
            if action.default not in (None, False):
                assert f"default: {action.default}" in helptext
        checked += 1
    assert checked >= 3 and "%(default)s" not in text
