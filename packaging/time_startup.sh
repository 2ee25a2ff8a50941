#!/usr/bin/env bash
# Time from start to the first measurement: the bundle against `hc-studio` of the active
# virtual environment, the same command each, RUNS times alternately; prints every run, the
# medians and the machine's load average (the figures depend on what else runs).
#
# Usage: packaging/time_startup.sh [RUNS]   (default 3; build the bundle first)
set -euo pipefail

runs="${1:-3}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
bundle_program="dist/hc-studio/hc-studio"
venv_program="$(command -v hc-studio || true)"
if [ ! -x "$bundle_program" ] || [ -z "$venv_program" ]; then
    echo "time_startup.sh: needs $bundle_program (packaging/build.sh) and hc-studio on PATH" >&2
    exit 2
fi
arguments=(measure resources/samples/291_HC.png --pixel-size 0.1 --out "$(mktemp -d)/x.csv")

seconds() {  # seconds PROGRAM: wall time of one run
    local start end
    start="$(date +%s.%N)"
    "$1" "${arguments[@]}" > /dev/null 2>&1
    end="$(date +%s.%N)"
    awk -v start="$start" -v end="$end" 'BEGIN { printf "%.2f", end - start }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
bundle_times=()
venv_times=()
for run in $(seq "$runs"); do
    bundle_times+=("$(seconds "$bundle_program")")
    venv_times+=("$(seconds "$venv_program")")
    echo "run $run: bundle ${bundle_times[-1]} s, venv ${venv_times[-1]} s"
done
echo "median: bundle $(median "${bundle_times[@]}") s, venv $(median "${venv_times[@]}") s"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
