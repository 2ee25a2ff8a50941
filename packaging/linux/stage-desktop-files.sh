#!/bin/sh
# Copy the desktop entry, AppStream metainfo, icons and their installer into a bundle folder:
# BUNDLE/share/{applications,metainfo,icons/hicolor/...} and BUNDLE/install-desktop-entry.sh.
#
# Usage: packaging/linux/stage-desktop-files.sh BUNDLE   (build.sh runs it)
set -eu

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUNDLE_FOLDER" >&2
    exit 2
fi
bundle="$1"
linux="$(cd "$(dirname "$0")" && pwd)"
icons="$linux/../../resources/icons"
share="$bundle/share"

mkdir -p "$share/applications" "$share/metainfo" "$share/icons/hicolor/scalable/apps"
cp "$linux/hc-studio.desktop" "$share/applications/"
cp "$linux/org.hcstudio.HCStudio.metainfo.xml" "$share/metainfo/"
cp "$icons/hc-studio.svg" "$share/icons/hicolor/scalable/apps/hc-studio.svg"
for size in 16 32 48 64 128 256; do
    mkdir -p "$share/icons/hicolor/${size}x${size}/apps"
    cp "$icons/hc-studio-$size.png" "$share/icons/hicolor/${size}x${size}/apps/hc-studio.png"
done
cp "$linux/install-desktop-entry.sh" "$bundle/"
