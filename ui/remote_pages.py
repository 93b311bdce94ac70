"""Server recordings one page at a time (no Qt: ``next_page`` runs on a background thread).

The client's ``list_recordings`` generator follows ``next`` itself; taking ``page_size`` items
from it costs exactly one request per page, and none after the last page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from itertools import islice

from api.client import PostHogClient
from api.models import RemoteRecording
from ui.browser_rows import Filters

log = logging.getLogger(__name__)

PAGE_SIZE = 100


class RemotePager:
    """Owns one client for one listing; used by one job at a time; ``close`` when replaced."""

    def __init__(
        self, client_factory: Callable[[], PostHogClient], filters: Filters, page_size: int = PAGE_SIZE
    ) -> None:
        self._factory = client_factory
        self._filters = filters
        self._page_size = page_size
        self._client: PostHogClient | None = None
        self._items: Iterator[RemoteRecording] | None = None
        self.has_more = True

    def next_page(self) -> list[RemoteRecording]:
        """The next page (may raise ``SyncNotConfigured`` or ``ApiError``)."""
        if self._items is None:
            self._client = self._factory()
            self._items = self._client.list_recordings(page_size=self._page_size, **self._filters.as_query())
        page = list(islice(self._items, self._page_size))
        self.has_more = len(page) == self._page_size
        log.debug("loaded %d server recordings (more: %s)", len(page), self.has_more)
        return page

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._items = None
