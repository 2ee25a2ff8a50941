#!/bin/sh
# Add HC Studio to this user's application menu (and `hc-studio` to ~/.local/bin).
#
# Usage, from the unpacked bundle folder: ./install-desktop-entry.sh [--uninstall]
# The menu entry runs the bundle where it is now; run this again after moving the folder.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
bin="$HOME/.local/bin"
sizes="16 32 48 64 128 256"

refresh_caches() {
    command -v update-desktop-database > /dev/null && update-desktop-database -q "$data/applications" || true
    command -v gtk-update-icon-cache > /dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$data/applications/hc-studio.desktop" "$data/metainfo/org.hcstudio.HCStudio.metainfo.xml"
    rm -f "$data/icons/hicolor/scalable/apps/hc-studio.svg"
    for size in $sizes; do rm -f "$data/icons/hicolor/${size}x${size}/apps/hc-studio.png"; done
    if [ -L "$bin/hc-studio" ]; then rm -f "$bin/hc-studio"; fi
    refresh_caches
    echo "HC Studio removed from the application menu."
    exit 0
fi
if [ -n "${1:-}" ]; then
    echo "usage: $0 [--uninstall]" >&2
    exit 2
fi

mkdir -p "$data/applications" "$data/metainfo" "$data/icons/hicolor/scalable/apps" "$bin"
# Exec names the program by its absolute path, quoted as the Desktop Entry spec asks.
sed -e "s|^Exec=hc-studio |Exec=\"$here/hc-studio\" |" -e "s|^TryExec=hc-studio\$|TryExec=$here/hc-studio|" \
    "$here/share/applications/hc-studio.desktop" > "$data/applications/hc-studio.desktop"
cp "$here/share/metainfo/org.hcstudio.HCStudio.metainfo.xml" "$data/metainfo/"
cp "$here/share/icons/hicolor/scalable/apps/hc-studio.svg" "$data/icons/hicolor/scalable/apps/"
for size in $sizes; do
    mkdir -p "$data/icons/hicolor/${size}x${size}/apps"
    cp "$here/share/icons/hicolor/${size}x${size}/apps/hc-studio.png" "$data/icons/hicolor/${size}x${size}/apps/"
done
ln -sf "$here/hc-studio" "$bin/hc-studio"
refresh_caches
echo "HC Studio added to the application menu; 'hc-studio' linked in $bin."
