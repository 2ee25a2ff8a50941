#!/usr/bin/env bash
# Build the HC Studio desktop bundle (PyInstaller, one folder) and a tar.gz of it.
#
# Usage: packaging/build.sh [--with-cuda] [--with-torch] [--no-tar]
#
# Prerequisite: a virtual environment with the project and the packaging tools installed, from
# the repository root:  pip install -e ".[package]"
#
# Makes dist/hc-studio/ (run dist/hc-studio/hc-studio) and
# dist/hc-studio-<version>-linux-<arch>.tar.gz. By default the bundle measures and reviews but
# leaves out torch (training) and onnxruntime's CUDA/TensorRT providers:
#   --with-cuda   keep onnxruntime's CUDA and TensorRT providers (HC_STUDIO_WITH_CUDA=1); the
#                 target machine still needs the NVIDIA driver, CUDA and cuDNN libraries
#   --with-torch  include torch and the training commands (HC_STUDIO_WITH_TORCH=1); several
#                 hundred MB more
#   --no-tar      build the folder only
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

make_tar=1
suffix=""
for argument in "$@"; do
    case "$argument" in
        --with-cuda) export HC_STUDIO_WITH_CUDA=1; suffix="$suffix-cuda" ;;
        --with-torch) export HC_STUDIO_WITH_TORCH=1; suffix="$suffix-torch" ;;
        --no-tar) make_tar=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown option $argument" >&2; usage >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python}"

if ! "$python" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: PyInstaller is not installed for $python." >&2
    echo "Install the project with its packaging tools first: pip install -e \".[package]\"" >&2
    exit 2
fi
if ! version="$("$python" -c "from importlib.metadata import version; print(version('hc-studio'))" 2>/dev/null)"; then
    echo "build.sh: hc-studio is not installed for $python; run: pip install -e \".[package]\"" >&2
    exit 2
fi

bundle="dist/hc-studio"
echo "Building HC Studio $version into $bundle ..."
"$python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/hc_studio.spec

# Desktop integration travels with the bundle; install-desktop-entry.sh puts it in place.
sh packaging/linux/stage-desktop-files.sh "$bundle"
cp packaging/bundle-readme.txt "$bundle/README.txt"

"$bundle/hc-studio" --help > /dev/null

echo
echo "Bundle: $(du -sh "$bundle" | cut -f1)  $bundle"
echo "Largest files:"
# awk reads to the end: `head` would close the pipe early and fail the build under pipefail.
find "$bundle" -type f -printf '%s %P\n' | sort -rn \
    | awk 'NR <= 10 { printf "  %6.1f MB  %s\n", $1 / 1048576, $2 }'

if [ "$make_tar" = 1 ]; then
    archive="dist/hc-studio-$version-linux-$(uname -m)$suffix.tar.gz"
    tar -C dist -czf "$archive" hc-studio
    echo "Archive: $(du -sh "$archive" | cut -f1)  $archive"
fi
