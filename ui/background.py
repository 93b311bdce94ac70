"""Running core work off the GUI thread and getting its result back on it.

The one worker→UI bridge for one-shot jobs: the callable runs on a plain thread; its result (or
exception) comes back through a queued Qt signal, so callbacks touch widgets on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from api.errors import ApiError
from desktop_recorder.context import SyncNotConfigured

log = logging.getLogger(__name__)


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


_alive: set[_Relay] = set()  # relays live until their job has reported


def run_in_background(
    job: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[Exception], None] | None = None,
    *,
    name: str = "background-job",
) -> threading.Thread:
    """Call ``job()`` on a new thread; ``on_done(result)`` / ``on_error(exc)`` run on the GUI thread."""
    relay = _Relay()  # created on the calling (GUI) thread, so its slots run there
    _alive.add(relay)

    def finished(_: object) -> None:
        _alive.discard(relay)

    relay.done.connect(on_done)
    relay.done.connect(finished)
    if on_error is not None:
        relay.failed.connect(on_error)
    relay.failed.connect(finished)

    def target() -> None:
        try:
            result = job()
        except (ApiError, SyncNotConfigured) as exc:  # expected (offline, not set up): no traceback
            log.info("%s: %s", name, exc)
            relay.failed.emit(exc)
        except Exception as exc:  # reported to the GUI thread, never lost
            log.exception("%s failed", name)
            relay.failed.emit(exc)
        else:
            relay.done.emit(result)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
