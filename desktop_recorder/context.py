"""What every front end (CLI, tray app) opens first: paths, settings, store, PostHog client."""

from __future__ import annotations

import logging
import logging.handlers
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from api.client import PostHogClient, validate_host, validate_project
from api.errors import InvalidHost
from desktop_recorder.config import AppPaths, Settings, load_settings
from desktop_recorder.secrets import ENV_KEY, get_api_key
from desktop_recorder.store import Store
from desktop_recorder.terminal import CONSOLE_LOG
from transcription.download import Progress, prepare_model
from transcription.model import WhisperTranscriber

log = logging.getLogger(__name__)


def unreadable_database(path: Path, exc: sqlite3.DatabaseError) -> str:
    return (f"{path} is not a readable recordings database ({exc}). It was left as it is; move it aside to "
            "start with an empty one.")


class CannotStart(Exception):
    """The app's folders or its database cannot be used; the message says which and why."""


class SyncNotConfigured(Exception):
    """No host or no key: the app works locally; the message says how to enable sync from the
    command line, ``reason`` alone what is missing (the tray app points to its Settings)."""

    def __init__(self, reason: str, how: str = "") -> None:
        self.reason = reason
        self.detail = f"{reason}{f' ({how})' if how else ''}"  # what is missing, and how to set it
        super().__init__(f"PostHog sync is off: {self.detail}.")


@dataclass
class AppContext:
    paths: AppPaths
    settings: Settings
    store: Store

    @classmethod
    def open(cls, *, check: bool = False) -> AppContext:
        """``check``: read the whole database first (``Store.check``), as the tray app does: it
        runs for hours and writes at any moment, so damage found only at some later query would
        surface as odd failures, and writing on can make it worse."""
        try:
            paths = AppPaths.resolve()
        except OSError as exc:  # DESKTOP_RECORDER_HOME is a file, a folder is read-only...
            raise CannotStart(f"Cannot use the folder {exc.filename}: {exc.strerror}") from exc
        store: Store | None = None
        try:
            store = Store(paths.database)
            damage = store.check() if check else None
        except sqlite3.OperationalError as exc:  # locked, read-only, disk I/O: the database may be fine
            problem = f"Cannot open the recordings database {paths.database}: {exc}"
        except sqlite3.DatabaseError as exc:
            problem = unreadable_database(paths.database, exc)
        else:
            if damage is None:
                return cls(paths, load_settings(paths), store)
            problem = unreadable_database(paths.database, sqlite3.DatabaseError(damage))
        if store is not None:
            store.close()
        raise CannotStart(problem)

    def close(self) -> None:
        self.store.close()

    def load_transcriber(self, spec: str | None = None, progress: Progress | None = None) -> WhisperTranscriber:
        """The model the settings (or ``spec``) name, fetched first if needed. Raises ModelUnavailable."""
        s = self.settings
        choice = prepare_model(spec or s.model, self.paths.models_dir, progress,
                               earlier_dirs=(self.paths.data_dir / "models",))  # where earlier builds downloaded
        return WhisperTranscriber(choice, language=s.language, device=s.device, compute_type=s.compute_type)

    def make_client(self) -> PostHogClient:
        host = self.settings.host
        if not host:
            raise SyncNotConfigured("no host configured", "set POSTHOG_HOST or run 'desktop-recorder configure'")
        try:
            host = validate_host(host)
            project = validate_project(str(self.settings.project_id or ""))  # null in a hand-edited file
        except (InvalidHost, ValueError) as exc:
            raise SyncNotConfigured(str(exc).rstrip(".")) from exc
        key = get_api_key(host)
        if not key:
            raise SyncNotConfigured(f"no personal API key for {host}",
                                    f"set {ENV_KEY} or run 'desktop-recorder configure'")
        return PostHogClient(host, key, project)


class _LogFile(logging.handlers.RotatingFileHandler):
    """The log file. When it cannot be written (a full disk), one line says so on stderr, instead
    of logging's traceback for every record."""

    _told = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)  # a bug (say, a bad format): logging's own report
            return
        if not self._told:
            self._told = True
            sys.stderr.write(f"warning: cannot write the log file {self.baseFilename}: {sys.exc_info()[1]}\n")


def setup_logging(paths: AppPaths, *, verbose: bool = False) -> None:
    """One rotating log file under the log dir; warnings (or everything with -v) on stderr."""
    import faulthandler

    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    file_handler = _LogFile(paths.log_dir / "desktop-recorder.log", maxBytes=2_000_000, backupCount=3,
                            encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    console = logging.StreamHandler(sys.stderr)
    console.set_name(CONSOLE_LOG)  # the live transcript says its lines while it shows partial text
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    for noisy in ("httpx", "httpcore", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    faulthandler.enable()
