"""What the frozen bundle holds: excluded modules and libraries, staged packages and data."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# What the brief of the bundle leaves out by default.
MUST_BE_EXCLUDED = [
    "torch", "torchvision", "onnx", "onnxscript", "matplotlib", "pytest", "hypothesis",
    "IPython", "tkinter", "scipy", "PySide6.QtWebEngineCore", "PySide6.Qt3DCore",
    "PySide6.QtQuick", "PySide6.QtMultimedia", "PySide6.QtQml", "PySide6.QtPdf",
    "hc_studio.core.training.commands", "hc_studio.models.unet",
]  # fmt: skip
# What the window and the measuring commands need at run time.
MUST_BE_KEPT = [
    "PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets", "PySide6.QtSvg", "pyqtgraph", "onnxruntime", "cv2", "numpy",
    "pydicom", "pylibjpeg", "libjpeg", "PIL", "skimage", "skimage.measure", "skimage._shared",
    "hc_studio.core.training", "hc_studio.core.training.methods", "hc_studio.app.train_tab",
]  # fmt: skip

# Imports what `hc-studio measure` and `hc-studio gui` import, measures a sample frame, prints
# the loaded module names.
RUNTIME_IMPORTS_SCRIPT = """
import json, os, sys, tempfile
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from hc_studio.core.cli import main
import hc_studio.app.cli, hc_studio.app.main_window, hc_studio.app.icon
out = os.path.join(tempfile.mkdtemp(), "m.csv")
code = main(["measure", sys.argv[1], "--pixel-size", "0.1", "--out", out])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("module", MUST_BE_EXCLUDED)
def test_the_lean_bundle_excludes(contents, module: str) -> None:
    assert contents.is_excluded_module(module, contents.excluded_modules(with_torch=False))


@pytest.mark.parametrize("module", MUST_BE_KEPT)
def test_the_bundle_keeps(contents, module: str) -> None:
    assert not contents.is_excluded_module(module, contents.excluded_modules(with_torch=False))


def test_the_torch_build_keeps_torch_and_training_but_not_test_tools(contents) -> None:
    excluded = contents.excluded_modules(with_torch=True)
    for module in ("torch", "onnx", "hc_studio.core.training.commands.train", "hc_studio.models"):
        assert not contents.is_excluded_module(module, excluded), module
    assert contents.is_excluded_module("pytest", excluded)


def test_submodules_go_with_an_excluded_package_but_not_lookalikes(contents) -> None:
    assert contents.is_excluded_module("torch.nn.functional", ["torch"])
    assert not contents.is_excluded_module("torchmetrics_like", ["torch"])


def test_nothing_measuring_or_the_window_imports_is_excluded(contents) -> None:
    """A new import of an excluded module in core/ or app/ would break only the bundle."""
    sample = REPO_ROOT / "resources" / "samples" / "291_HC.png"
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_IMPORTS_SCRIPT, str(sample)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    excluded = contents.excluded_modules(with_torch=False)
    loaded_but_excluded = [
        module
        for module in report["modules"]
        if contents.is_excluded_module(module, excluded) and module not in contents.OPTIONAL_IMPORTS
    ]
    assert loaded_but_excluded == []
    # The path really ran: a session was made, and the plane check read its shipped file.
    assert "onnxruntime.capi.onnxruntime_inference_collection" in report["modules"]
    assert "hc_studio.resources" in report["modules"]


@pytest.mark.parametrize(
    ("library", "kept"),
    [
        ("onnxruntime/capi/libonnxruntime_providers_cuda.so", False),
        ("onnxruntime/capi/libonnxruntime_providers_tensorrt.so", False),
        ("nvidia/cublas/lib/libcublasLt.so.13", False),
        ("onnxruntime/capi/libonnxruntime_providers_shared.so", True),
        ("onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so", True),
        ("PySide6/Qt/lib/libQt6Core.so.6", True),
        ("PySide6/Qt/lib/libQt6Gui.so.6", True),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", True),
        ("PySide6/Qt/lib/libQt6Pdf.so.6", False),
        ("PySide6/Qt/plugins/imageformats/libqpdf.so", False),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", False),
        ("libQt6Quick.so.6", False),
    ],
)
def test_libraries_kept_by_default(contents, library: str, kept: bool) -> None:
    assert contents.keep_binary(library, with_cuda=False) is kept


def test_the_cuda_flag_keeps_the_cuda_providers(contents) -> None:
    assert contents.keep_binary("onnxruntime/capi/libonnxruntime_providers_cuda.so", True)
    assert contents.keep_binary("onnxruntime/capi/libonnxruntime_providers_tensorrt.so", True)
    assert not contents.keep_binary("PySide6/Qt/lib/libQt6Pdf.so.6", True)


def test_build_flags_read_from_the_environment(contents) -> None:
    assert contents.flag("HC_STUDIO_WITH_CUDA", {"HC_STUDIO_WITH_CUDA": "1"})
    assert contents.flag("HC_STUDIO_WITH_CUDA", {"HC_STUDIO_WITH_CUDA": "yes"})
    assert not contents.flag("HC_STUDIO_WITH_CUDA", {"HC_STUDIO_WITH_CUDA": "0"})
    assert not contents.flag("HC_STUDIO_WITH_CUDA", {})


def test_pruning_drops_unwanted_libraries_and_what_only_they_needed(contents) -> None:
    entries = [
        ("cv2/cv2.abi3.so", "/src/cv2.so", "EXTENSION"),
        ("libpython3.11.so.1.0", "/src/libpython", "BINARY"),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "/src/gtk3", "BINARY"),
        ("libz.so.1", "/src/libz", "BINARY"),  # needed by cv2 through libpng
        ("libpng16.so.16", "/src/libpng", "BINARY"),  # needed by cv2
        ("libcairo.so.2", "/src/libcairo", "BINARY"),  # needed only by the gtk3 plugin
        ("libqgtk3.so", "PySide6/Qt/plugins/platformthemes/libqgtk3.so", "SYMLINK"),
        ("libpng.so", "libpng16.so.16", "SYMLINK"),
        ("hc_studio/models/model.onnx", "/src/model.onnx", "DATA"),
    ]
    needs = {
        "/src/cv2.so": ["libpng16.so.16", "libc.so.6"],
        "/src/libpng": ["libz.so.1"],
        "/src/gtk3": ["libcairo.so.2", "libz.so.1"],
    }
    kept = contents.prune_binaries(entries, False, lambda source: needs.get(source, []))
    assert [entry[0] for entry in kept] == [
        "cv2/cv2.abi3.so",
        "libpython3.11.so.1.0",
        "libz.so.1",
        "libpng16.so.16",
        "libpng.so",
        "hc_studio/models/model.onnx",
    ]


def test_symlinks_in_subfolders_resolve_against_their_folder(contents) -> None:
    entries = [
        ("numpy.libs/libopenblas.so", "/src/openblas", "BINARY"),
        ("numpy/_core/libopenblas.so", "../../numpy.libs/libopenblas.so", "SYMLINK"),
    ]
    assert contents.prune_binaries(entries, False, lambda source: []) == entries


def test_qt_translations_are_left_out_except_english(contents) -> None:
    assert not contents.keep_data("PySide6/Qt/translations/qtbase_de.qm")
    assert contents.keep_data("PySide6/Qt/translations/qtbase_en.qm")
    assert contents.keep_data("hc_studio/resources/samples/291_HC.png")


def test_package_folders_match_pyproject(contents) -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["package-dir"] == contents.PACKAGE_DIRS


def test_the_package_extra_installs_the_build_tools() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    extra = " ".join(config["project"]["optional-dependencies"]["package"])
    assert "pyinstaller" in extra and "pyinstaller-hooks-contrib" in extra


@pytest.fixture(scope="module")
def staged(contents, tmp_path_factory) -> Path:
    return contents.stage_packages(REPO_ROOT, tmp_path_factory.mktemp("stage"))


def test_staged_modules_include_every_lazily_loaded_command(contents, staged: Path) -> None:
    from hc_studio.app.entry import COMMANDS

    modules = contents.package_modules(staged, contents.excluded_modules(with_torch=False))
    for name, module in COMMANDS.items():
        if name in ("train", "export", "pretrain"):
            assert module not in modules, module  # need torch: not in the lean bundle
        else:
            assert module in modules, module
    assert "hc_studio.core.training.methods" in modules  # the Train tab lists the methods
    assert "hc_studio.models.unet" not in modules
    assert not any("__pycache__" in module for module in modules)


def test_the_default_model_lands_where_the_lookup_finds_it(contents, staged: Path) -> None:
    """default_model_path() lists the folder of the hc_studio.models package; in the bundle
    that folder is <bundle>/_internal/hc_studio/models, the data destination below."""
    data = contents.package_data(staged)
    models = [(Path(source).name, folder) for source, folder in data if source.endswith(".onnx")]
    # The default model (int8) and the float weights it names, which training starts from.
    assert sorted(models) == [
        ("hc_head_ersr_v3.onnx", "hc_studio/models"),
        ("hc_head_ersr_v4.onnx", "hc_studio/models"),
    ]
    destinations = {(Path(source).name, folder) for source, folder in data}
    assert ("MODEL_CARD.md", "hc_studio/models") in destinations
    for name in ("291_HC.png", "pixel_size.csv", "ATTRIBUTION.md"):
        assert (name, "hc_studio/resources/samples") in destinations
    assert ("hc-studio-256.png", "hc_studio/resources/icons") in destinations
    assert not any(source.endswith((".py", ".pyc")) for source, _folder in data)


def test_the_staged_layout_resolves_the_default_model(staged: Path) -> None:
    """With only the staged copy on the path (as in the bundle), the lookup finds its model."""
    script = (
        "import sys; sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f)]\n"
        "from hc_studio.core.inference import default_model_path\n"
        "print(default_model_path())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONPATH": str(staged), "PATH": "/usr/bin:/bin"},
    )
    found = Path(result.stdout.strip())
    assert found == staged / "hc_studio" / "models" / "hc_head_ersr_v4.onnx"


def test_the_spec_compiles_and_uses_the_launcher() -> None:
    spec = (REPO_ROOT / "packaging" / "hc_studio.spec").read_text()
    compile(spec, "hc_studio.spec", "exec")
    assert '"launcher.py"' in spec and "bundle_contents" in spec


def test_the_qt_runtime_hook_replaces_pyinstallers_and_sets_the_qt_paths(tmp_path: Path) -> None:
    """The bundle's own PySide6 run-time hook sets Qt's paths without importing QtCore."""
    hooks = REPO_ROOT / "packaging" / "hooks"
    registered = ast.literal_eval((hooks / "rthooks.dat").read_text())
    assert list(registered) == ["PySide6"]
    (hook_name,) = registered["PySide6"]
    script = (
        "import runpy, sys, os\n"
        f"sys._MEIPASS = {str(tmp_path)!r}\n"
        f"runpy.run_path({str(hooks / 'rthooks' / hook_name)!r})\n"
        "print(os.environ['QT_PLUGIN_PATH'])\n"
        "print('PySide6.QtCore' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    plugin_path, qt_loaded = result.stdout.split()
    assert Path(plugin_path) == tmp_path / "PySide6" / "Qt" / "plugins"
    assert qt_loaded == "False"
