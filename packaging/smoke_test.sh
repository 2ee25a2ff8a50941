#!/usr/bin/env bash
# Smoke test of a BUILT bundle: runs the frozen program, not the sources.
#
# Usage: packaging/smoke_test.sh [BUNDLE_FOLDER]   (default dist/hc-studio; build it first with
# packaging/build.sh). Needs no display (Qt runs offscreen) and no Python: every check drives
# the bundle's own program. Prints one line per check and exits 1 if any failed.
#
# Checks: the command list; `measure` on a sample frame writes a CSV with an HC in mm, measured
# with the bundled default model; a DICOM file is measured; `gui FILE --screenshot` writes a
# PNG of at least 800x500; the version metadata, pydicom's JPEG decoder and the torch/CUDA
# exclusions inside the bundle.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$(cd "${1:-$repo/dist/hc-studio}" 2>/dev/null && pwd)" || {
    echo "smoke_test.sh: no bundle at ${1:-dist/hc-studio}; build it with packaging/build.sh" >&2
    exit 2
}
program="$bundle/hc-studio"
sample="$repo/resources/samples/291_HC.png"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Keep the window's remembered settings away from the user's own.
export XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$work/cache" XDG_DATA_HOME="$work/data"
export QT_QPA_PLATFORM=offscreen

failures=0
check() {  # check NAME COMMAND...: run COMMAND, report PASS/FAIL with NAME
    local name="$1"
    shift
    if "$@" > "$work/last.log" 2>&1; then
        echo "PASS  $name"
    else
        echo "FAIL  $name"
        sed 's/^/      /' "$work/last.log" | tail -20
        failures=$((failures + 1))
    fi
}

csv_column() {  # csv_column FILE NAME: the value of column NAME in the first data row
    "$program" -c "
import csv, sys
with open(sys.argv[1], newline='') as table:
    print(next(csv.DictReader(table)).get(sys.argv[2], ''))
" "$1" "$2"
}

measure_sample() {
    "$program" measure "$sample" --pixel-size 0.1 --out "$work/sample.csv" || return 1
    local hc unit model
    hc="$(csv_column "$work/sample.csv" hc)"
    unit="$(csv_column "$work/sample.csv" unit)"
    model="$(csv_column "$work/sample.csv" model)"
    echo "hc=$hc unit=$unit model=$model"
    [[ "$hc" =~ ^[0-9]+(\.[0-9]+)?$ ]] && [ "$unit" = mm ] && [ -n "$model" ]
}

measure_dicom() {
    # The bundle's pydicom writes the sample frame as an uncompressed DICOM with its pixel size.
    "$program" -c "
import sys, cv2, numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid
pixels = cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE)
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = UltrasoundImageStorage
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = Dataset()
ds.file_meta = meta
ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
ds.Modality, ds.PatientName = 'US', 'Phantom^Smoke'
ds.Rows, ds.Columns = pixels.shape
ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
ds.PixelSpacing = [0.1, 0.1]
ds.PixelData = np.ascontiguousarray(pixels).tobytes()
ds.save_as(sys.argv[2], enforce_file_format=True)
" "$sample" "$work/frame.dcm" || return 1
    "$program" measure "$work/frame.dcm" --out "$work/dicom.csv" || return 1
    local hc source
    hc="$(csv_column "$work/dicom.csv" hc)"
    source="$(csv_column "$work/dicom.csv" spacing_source)"
    echo "hc=$hc spacing_source=$source"
    [[ "$hc" =~ ^[0-9]+(\.[0-9]+)?$ ]] && [[ "$source" == dicom* ]]
}

png_size() {  # png_size FILE: "WIDTH HEIGHT" from the PNG header
    od -An -tu1 -j16 -N8 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4,
        $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }'
}

gui_screenshot() {
    local shot="$work/window.png" width height
    "$program" gui "$sample" --pixel-size 0.15 --screenshot "$shot" --timeout 120 || return 1
    [ -s "$shot" ] || return 1
    read -r width height < <(png_size "$shot")
    echo "screenshot ${width}x${height}"
    [ "$width" -ge 800 ] && [ "$height" -ge 500 ]
}

lists_commands() {
    "$program" --help > "$work/help.txt" 2>&1
    grep -q measure "$work/help.txt" && grep -q gui "$work/help.txt"
}

prints_version() {
    "$program" --version | grep -q "^hc-studio [0-9]"
}

train_says_why() {  # lean build: `train` is listed and says training is not in this build
    if [ -d "$bundle/_internal/torch" ]; then
        "$program" train --list-methods | grep -q supervised
    else
        "$program" --help | grep -q train || return 1
        ! "$program" train --list-methods > "$work/train.txt" 2>&1 &&
            grep -q "not available in this build" "$work/train.txt"
    fi
}

inside_bundle() {  # inside_bundle CODE: run CODE with the bundle's Python
    "$program" -c "$1"
}

torch_state() {  # lean build: no torch (the Train tab says so); --with-torch: torch imports
    if [ -d "$bundle/_internal/torch" ]; then
        echo "torch bundled (a --with-torch build)"
        "$program" -c "import torch"
    else
        ! "$program" -c "import torch"
    fi
}

cuda_provider_state() {
    local cuda="$bundle/_internal/onnxruntime/capi/libonnxruntime_providers_cuda.so"
    [ -f "$bundle/_internal/onnxruntime/capi/libonnxruntime_providers_shared.so" ] || return 1
    if [ -f "$cuda" ]; then echo "CUDA provider bundled (an --with-cuda build)"; fi
    return 0
}

check "the program lists its commands" lists_commands
check "--version prints the version" prints_version
check "train lists its methods, or says training is not in this build" train_says_why
check "measure: sample frame -> CSV with HC in mm, default model" measure_sample
check "measure: DICOM frame with its pixel spacing" measure_dicom
check "gui --screenshot offscreen, at least 800x500" gui_screenshot
check "version metadata (About box)" inside_bundle \
    "from importlib.metadata import version; assert version('hc-studio'), 'no version'"
check "pydicom finds the libjpeg JPEG decoder" inside_bundle \
    "from pylibjpeg.utils import get_decoders; assert 'libjpeg' in get_decoders(), get_decoders()"
check "torch absent, or importable in a --with-torch build" torch_state
check "onnxruntime CPU and shared provider present" cuda_provider_state

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed ($bundle)"
