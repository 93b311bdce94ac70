import sys

from desktop_recorder.cli import main

sys.exit(main())
