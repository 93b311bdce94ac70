"""Desktop Recorder: the Qt-free application core (config, store, session) and the CLI."""

__version__ = "0.1.0"
