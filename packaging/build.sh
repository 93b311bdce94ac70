#!/usr/bin/env bash
# Build the Linux one-folder bundle and its tarball: dist/desktop-recorder/ and
# dist/desktop-recorder-VERSION-linux-ARCH.tar.gz (runs without Python or a venv on the target).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/_setup.sh"
ensure_system_packages "${APP_PACKAGES[@]}"
ensure_venv ""
cd "$ROOT"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "pyinstaller>=6.10,<7"
VERSION="$("$VENV/bin/python" -c 'import desktop_recorder; print(desktop_recorder.__version__)')"
log "building desktop-recorder $VERSION"
"$VENV/bin/pyinstaller" --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/desktop-recorder.spec
BUNDLE="dist/desktop-recorder"
# Desktop integration files inside the bundle; packaging/linux/install.sh puts them in place.
mkdir -p "$BUNDLE/share/applications"
cp packaging/linux/desktop-recorder.desktop "$BUNDLE/share/applications/"
cp packaging/linux/install.sh "$BUNDLE/"
QT_QPA_PLATFORM=offscreen "$VENV/bin/python" packaging/render_icons.py assets/desktop-recorder.svg "$BUNDLE/share/icons"
TARBALL="dist/desktop-recorder-$VERSION-linux-$(uname -m).tar.gz"
tar -C dist -czf "$TARBALL" desktop-recorder
log "bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1)), tarball: $TARBALL ($(du -sh "$TARBALL" | cut -f1))"
