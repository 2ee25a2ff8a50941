"""`hc-studio gui --help`: every option says what it does and its default."""

from __future__ import annotations

import argparse

from hc_studio.app import cli


def test_every_gui_option_has_a_sentence_and_its_default():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert {a.dest for a in options} >= {"files", "pixel_size", "model", "screenshot", "tab"}
    for action in options:
        text = action.help or ""
        assert text[:1].isupper() and text.rstrip().endswith("."), action.dest
        assert "(default" in text, action.dest
