"""Render the SVG app icon as hicolor PNGs (16-512 px) plus the SVG: render_icons.py SVG OUTDIR"""

import shutil
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

app = QGuiApplication(sys.argv[:1])
svg, out = Path(sys.argv[1]), Path(sys.argv[2])
renderer = QSvgRenderer(str(svg))
for size in (16, 24, 32, 48, 64, 128, 256, 512):
    target = out / "hicolor" / f"{size}x{size}" / "apps" / "desktop-recorder.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    image.save(str(target))
scalable = out / "hicolor" / "scalable" / "apps"
scalable.mkdir(parents=True, exist_ok=True)
shutil.copy(svg, scalable / "desktop-recorder.svg")
