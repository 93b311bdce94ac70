"""The retry policy the client owns: which failures to retry and how long to wait.

Retry connection errors, timeouts, 408, 429 and 5xx with capped exponential backoff and full
jitter; honour the server's wait (``Retry-After`` or the seconds in a 429 detail) when it gives
one, by sleeping if it is short and by raising (for the caller to schedule) if it is long. Never
retry 400/403/404 or "this instance cannot create recordings".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from api.errors import ApiError, RateLimited, ServerUnavailable


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    # A longer wait asked for by the server is not slept inside the request: the error goes to the
    # caller, whose scheduler honours it (``SyncWorker`` backs the recording off for that long)
    # and can still stop, or give up at its deadline, meanwhile. A 429 asking for 100 s used to
    # hold ``record`` for minutes after it was stopped, deaf to Ctrl-C.
    max_wait_in_request_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def should_retry(self, error: ApiError, attempt: int) -> bool:
        """``attempt`` counts from 1 (the attempt that just failed)."""
        return (error.retryable and attempt < self.max_attempts
                and self.server_wait_s(error) <= self.max_wait_in_request_s)

    @staticmethod
    def server_wait_s(error: ApiError) -> float:
        """The wait the server asked for (0 if none)."""
        if isinstance(error, RateLimited | ServerUnavailable) and error.retry_after_s is not None:
            return max(error.retry_after_s, 0.0)
        return 0.0

    def delay_s(self, error: ApiError, attempt: int) -> float:
        """How long to wait before attempt ``attempt + 1``."""
        if isinstance(error, RateLimited | ServerUnavailable) and error.retry_after_s is not None:
            return self.server_wait_s(error)  # only waits up to max_wait_in_request_s get here
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return self.rng.uniform(ceiling / 2, ceiling)
