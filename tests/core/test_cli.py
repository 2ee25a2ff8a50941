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


def test_version_prints_the_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"hc-studio {cli.version()}" and cli.version()


def test_the_version_is_looked_up_only_for_version(monkeypatch) -> None:
    def forbidden() -> str:
        raise AssertionError("the version was looked up")

    monkeypatch.setattr(cli, "version", forbidden)
    parser = cli.build_parser()  # every command builds it: no metadata lookup here
    assert "--version" in parser.format_help()


def test_core_names_no_window_command_and_the_entry_point_adds_it() -> None:
    from hc_studio.app import entry

    assert not any(module.startswith("hc_studio.app") for module in cli.COMMANDS.values())
    assert entry.COMMANDS == {**cli.COMMANDS, "gui": "hc_studio.app.cli"}
    core_files = (Path(cli.__file__).parent).rglob("*.py")
    naming_the_app = [p.name for p in core_files if "hc_studio.app" in p.read_text()]
    assert naming_the_app == []


def test_the_installed_script_is_the_entry_point_with_gui() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert scripts["hc-studio"] == "hc_studio.app.entry:main"


# A child Python in which some modules cannot be imported, as if they were not installed.
BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from hc_studio.app.entry import main
sys.exit(main({argv!r}))
"""


def run_blocked(blocked: list[str], argv: list[str]):
    import subprocess

    code = BLOCKER.format(blocked=blocked, argv=argv)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize(
    "argv",
    [["train", "--labeled", "L", "--out", "R"], ["export", "x.pt", "--out", "m.onnx"],
     ["pretrain", "--frames", "F", "--out", "e.pt"]],
)  # fmt: skip
def test_training_commands_without_torch_say_which_extra_to_install(argv, tmp_path) -> None:
    done = run_blocked(["torch"], [*argv[:-1], str(tmp_path / argv[-1])])
    assert done.returncode == cli.EXIT_USAGE
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "pip install torch==" in lines[0] and 'pip install "hc-studio[train]"' in lines[0]
    assert "'torch'" in lines[0] and lines[0].startswith(f"hc-studio {argv[0]}: error:")


def test_a_build_without_training_lists_train_and_says_it_is_not_available() -> None:
    blocked = ["torch", "hc_studio.core.training.commands"]  # what the lean bundle leaves out
    listed = run_blocked(blocked, ["train", "--list-methods"])
    assert listed.returncode == cli.EXIT_USAGE
    assert "invalid choice" not in listed.stderr
    assert "training is not available in this build" in listed.stderr
    assert 'pip install "hc-studio[train]"' in listed.stderr
    help_text = run_blocked(blocked, ["--help"]).stdout
    assert "train" in help_text and "not available in this build" in help_text


def test_training_availability_is_known_without_importing_torch(monkeypatch) -> None:
    import importlib.util

    assert cli.training_unavailable() is None  # this environment trains
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "torch" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert (
        "PyTorch" in cli.training_unavailable() and "hc-studio[train]" in cli.training_unavailable()
    )
    monkeypatch.setitem(cli.COMMANDS, "train", "hc_studio.core.training.not_in_this_build")
    assert "not available in this build" in cli.training_unavailable()
