"""The frozen program's entry point: commands, no arguments = window, `-c` and `-m` children."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli_calls(monkeypatch) -> list[list[str]]:
    """Replace the installed entry point's main; returns the argument lists it was called with."""
    import hc_studio.app.entry

    calls: list[list[str]] = []

    def fake_main(argv):
        calls.append(list(argv))
        return 7

    monkeypatch.setattr(hc_studio.app.entry, "main", fake_main)
    return calls


def test_no_arguments_opens_the_window(launcher, cli_calls) -> None:
    assert launcher.main([]) == 7
    assert cli_calls == [["gui"]]


def test_commands_go_to_the_hc_studio_command(launcher, cli_calls) -> None:
    assert launcher.main(["measure", "a.png", "--out", "x.csv"]) == 7
    assert cli_calls == [["measure", "a.png", "--out", "x.csv"]]


def test_an_option_alone_is_not_taken_for_the_window(launcher, cli_calls) -> None:
    launcher.main(["--help"])
    assert cli_calls == [["--help"]]


def test_dash_c_runs_code_with_its_arguments(launcher, monkeypatch, capsys, cli_calls) -> None:
    monkeypatch.setattr(sys, "argv", ["hc-studio"])
    code = "import sys; print(__name__, sys.argv[1:])"
    assert launcher.main(["-c", code, "one", "two"]) == 0
    assert capsys.readouterr().out.strip() == "__main__ ['one', 'two']"
    assert cli_calls == []  # never the window: the Train tab's probe must not open one


def test_dash_c_reports_a_failing_import_like_python(launcher, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["hc-studio"])
    assert launcher.main(["-c", "import module_that_is_not_there_at_all"]) == 1
    assert "ModuleNotFoundError" in capsys.readouterr().err


def test_dash_c_passes_the_exit_code_on(launcher, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["hc-studio"])
    assert launcher.main(["-c", "raise SystemExit(3)"]) == 3
    assert launcher.main(["-c", "raise SystemExit"]) == 0


def test_dash_m_runs_a_module_as_main(launcher, monkeypatch, tmp_path: Path, capsys) -> None:
    (tmp_path / "launcher_child_module.py").write_text(
        "import sys\nif __name__ == '__main__':\n    print('ran', sys.argv[1:])\n"
        "    raise SystemExit(5)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["hc-studio"])
    assert launcher.main(["-m", "launcher_child_module", "train", "--x"]) == 5
    assert capsys.readouterr().out.strip() == "ran ['train', '--x']"


def test_dash_m_names_a_module_missing_from_the_bundle(launcher, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["hc-studio"])
    assert launcher.main(["-m", "module_that_is_not_there_at_all"]) == 1
    assert "module_that_is_not_there_at_all" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["-c", "-m"])
def test_dash_c_and_m_need_an_argument(launcher, capsys, flag: str) -> None:
    assert launcher.main([flag]) == 2
    assert "needs an argument" in capsys.readouterr().err


def test_the_lean_bundle_lists_train_and_says_it_is_not_in_this_build() -> None:
    """The launcher with what the lean bundle leaves out blocked: no empty choice."""
    import subprocess

    launcher_path = Path(__file__).resolve().parents[2] / "packaging" / "launcher.py"
    code = f"""
import importlib.abc, runpy, sys
LEFT_OUT = ("torch", "hc_studio.core.training.commands")
class LeftOut(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in LEFT_OUT):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, LeftOut())
sys.argv = ["hc-studio", *sys.argv[1:]]
runpy.run_path({str(launcher_path)!r}, run_name="__main__")
"""
    done = subprocess.run(
        [sys.executable, "-c", code, "train", "--list-methods"], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert "invalid choice" not in done.stderr
    assert "training is not available in this build" in done.stderr
