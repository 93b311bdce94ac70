"""Entry point of the frozen app (PyInstaller runs this file as __main__)."""

import multiprocessing
import sys

from desktop_recorder.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
