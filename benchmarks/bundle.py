"""Size of the Linux bundle and its cold start to a tray icon (Xvfb + trayer).

    bash tests/rig/xvfb_tray.sh -- .venv/bin/python benchmarks/bundle.py [--runs 3]

Needs dist/ from packaging/build.sh. Prints JSON: ``bundle_mb``, ``tarball_mb``,
``cold_start_to_tray_s`` (process start → its icon embedded in the tray; median and max).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

DIST = Path(__file__).resolve().parent.parent / "dist"


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)


def cold_start(exe: Path) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DESKTOP_RECORDER_HOME": home}
        started = time.monotonic()
        app = subprocess.Popen([str(exe)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while time.monotonic() - started < 60:
                tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
                parts = tree.split('("panel" "trayer")', 1)
                if len(parts) == 2 and '"Desktop Recorder")' in parts[1]:
                    return time.monotonic() - started
                time.sleep(0.02)
            raise RuntimeError("the tray icon never appeared")
        finally:
            app.terminate()
            app.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = [cold_start(DIST / "desktop-recorder" / "desktop-recorder") for _ in range(args.runs)]
    tarball = next(DIST.glob("desktop-recorder-*-linux-*.tar.gz"))
    print(json.dumps({"machine": {"cpus": os.cpu_count()}, "bundle_mb": size_mb(DIST / "desktop-recorder"),
                      "tarball_mb": size_mb(tarball),
                      "cold_start_to_tray_s": {"median": round(statistics.median(times), 2),
                                               "max": round(max(times), 2)}}))


if __name__ == "__main__":
    main()
