"""The `hc-studio` entry point: command table, lazy loading, errors without tracebacks."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from hc_studio.core import cli


@pytest.fixture
def fake_command(tmp_path: Path, monkeypatch):
    """Register a command `fake` whose run() raises whatever `fake.ERROR` holds."""
    (tmp_path / "fake_hc_command.py").write_text(
        textwrap.dedent(
            """
            HELP = "a command for tests"
            ERROR = None

            def add_arguments(parser):
                parser.add_argument("--value", type=int, default=3)

            def run(args):
                if ERROR is not None:
                    raise ERROR
                return args.value
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "fake", "fake_hc_command")
    import fake_hc_command

    yield fake_hc_command
    sys.modules.pop("fake_hc_command", None)


def test_help_lists_the_foundation_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "measure" in out and "fit-annotations" in out


def test_missing_command_modules_are_left_out(monkeypatch, capsys) -> None:
    monkeypatch.setitem(cli.COMMANDS, "later", "hc_studio.core.commands.not_written_yet")
    assert cli.load_command("later") is None
    parser = cli.build_parser()
    assert "later" not in parser.format_help()


def test_missing_dependency_inside_a_command_is_not_hidden(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "broken_hc_command.py").write_text("import surely_not_an_installed_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "broken", "broken_hc_command")
    with pytest.raises(ModuleNotFoundError):
        cli.load_command("broken")


def test_no_command_prints_help_and_exits_2(capsys) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert "usage: hc-studio" in capsys.readouterr().err


def test_command_runs_and_returns_its_code(fake_command) -> None:
    assert cli.main(["fake", "--value", "1"]) == 1


def test_only_the_chosen_command_is_imported(fake_command, monkeypatch) -> None:
    # A broken unrelated command must not stop `hc-studio fake`.
    monkeypatch.setitem(cli.COMMANDS, "broken", "surely_not_an_installed_module")
    assert cli.main(["fake", "--value", "0"]) == 0


@pytest.mark.parametrize(
    "error", [ValueError("bad value"), OSError("disk full"), FileNotFoundError("x.png: missing")]
)
def test_errors_print_one_line_and_exit_2(fake_command, capsys, error) -> None:
    fake_command.ERROR = error
    assert cli.main(["fake"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"hc-studio: error: {error}\n"


def test_frame_read_errors_are_reported_like_the_others(fake_command, capsys) -> None:
    from hc_studio.core.io import FrameReadError

    fake_command.ERROR = FrameReadError("scans/a.dcm", "truncated pixel data")
    assert cli.main(["fake"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err == "hc-studio: error: a.dcm: truncated pixel data\n"


def test_debug_shows_the_traceback(fake_command) -> None:
    fake_command.ERROR = ValueError("bad value")
    with pytest.raises(ValueError, match="bad value"):
        cli.main(["--debug", "fake"])


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["measure", "x.png", "--out", "m.csv", "--pixel-size", "-1"])
    assert exit_info.value.code == 2
    assert "positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["measure", "x.png"])  # --out missing
    assert exit_info.value.code == 2
