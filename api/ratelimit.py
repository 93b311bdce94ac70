"""A client-side request budget per API key, shared by every client in the process.

PostHog allows 480 requests/minute per personal API key; we stay under ``per_minute`` (default
400) however many recordings sync at once, by waiting before a request that would exceed it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


class RateBudget:
    def __init__(
        self,
        per_minute: int = 400,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until one more request fits in the sliding one-minute window."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= WINDOW_S:
                    self._sent.popleft()
                if len(self._sent) < self.per_minute:
                    self._sent.append(now)
                    return
                wait = WINDOW_S - (now - self._sent[0])
            self._sleep(max(wait, 0.01))


_budgets: dict[str, RateBudget] = {}
_budgets_lock = threading.Lock()


def budget_for_key(api_key: str) -> RateBudget:
    """The process-wide budget of one key (keyed by a hash: the key itself is never stored)."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    with _budgets_lock:
        return _budgets.setdefault(digest, RateBudget())
