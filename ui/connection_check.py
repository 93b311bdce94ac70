"""'Test connection' without Qt: who the key belongs to, which project, and whether it may write.

Runs on a background thread; changes nothing on the server (see ``probe_write_scope``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from api.client import PostHogClient
from api.retry import RetryPolicy
from desktop_recorder.secrets import get_api_key

log = logging.getLogger(__name__)

WRITE_SCOPE = "desktop_recording:write"


class MissingKey(Exception):
    """No key typed in and none stored for the host."""


@dataclass(frozen=True)
class ConnectionReport:
    host: str
    email: str | None
    project_id: int
    can_write: bool
    projects: tuple[tuple[int, str], ...] = ()  # (id, name) the user can pick from

    def describe(self) -> str:
        who = self.email or "an unnamed user"
        scope = (f"{WRITE_SCOPE} granted: recordings will sync." if self.can_write else
                 f"{WRITE_SCOPE} missing: this key can read but recordings will not sync. "
                 f"Create a key with the {WRITE_SCOPE} scope.")
        return f"Connected to {self.host} as {who}, project {self.project_id}. {scope}"


def projects_of(me: dict[str, Any]) -> tuple[tuple[int, str], ...]:
    """The user's current project and the other projects of their organization, as users/@me lists
    them (``team``, and ``organization.teams`` where the server includes it)."""
    found: dict[int, str] = {}
    for team in [me.get("team") or {}, *((me.get("organization") or {}).get("teams") or [])]:
        if isinstance(team, dict) and isinstance(team.get("id"), int):
            found.setdefault(team["id"], str(team.get("name") or f"Project {team['id']}"))
    return tuple(found.items())


def check_connection(host: str, typed_key: str, project: str) -> ConnectionReport:
    """``host`` is already validated; an empty ``typed_key`` means the key stored for ``host``."""
    key = typed_key.strip() or get_api_key(host)
    if not key:
        raise MissingKey(f"Enter a personal API key: none is stored for {host}.")
    # One attempt: the user is waiting, and an answer (even a failure) is worth more than retries.
    with PostHogClient(host, key, project, retry=RetryPolicy(max_attempts=1)) as client:
        me = client.me()
        project_id = client.resolve_project()
        can_write = client.probe_write_scope()
    log.info("connection test: project %s, write scope %s", project_id, can_write)
    return ConnectionReport(host, me.get("email"), project_id, can_write, projects_of(me))
