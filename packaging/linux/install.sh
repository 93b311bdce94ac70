#!/usr/bin/env sh
# Desktop integration for an unpacked bundle: menu entry, icons, `desktop-recorder` on PATH.
#   ./install.sh            (per user; run it from the unpacked desktop-recorder folder)
#   ./install.sh --autostart  (also start it at login)
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$DATA/applications" "$HOME/.local/bin"
cp -r "$HERE/share/icons/." "$DATA/icons/"
sed "s|^Exec=.*|Exec=$HERE/desktop-recorder|" "$HERE/share/applications/desktop-recorder.desktop" \
  > "$DATA/applications/desktop-recorder.desktop"
ln -sf "$HERE/desktop-recorder" "$HOME/.local/bin/desktop-recorder"
if [ "${1:-}" = "--autostart" ]; then
  mkdir -p "${XDG_CONFIG_HOME:-$HOME/.config}/autostart"
  cp "$DATA/applications/desktop-recorder.desktop" "${XDG_CONFIG_HOME:-$HOME/.config}/autostart/"
fi
echo "Installed: menu entry 'Desktop Recorder', icons, and $HOME/.local/bin/desktop-recorder"
