"""The personal API key: ``POSTHOG_PERSONAL_API_KEY`` for headless use, else the OS keyring.

The key is never written to a settings file or a log. Keyring failures degrade to a message.
"""

from __future__ import annotations

import logging
import os
import threading

import keyring
from keyring.errors import KeyringError

log = logging.getLogger(__name__)
SERVICE = "desktop-recorder"
ENV_KEY = "POSTHOG_PERSONAL_API_KEY"


# Keys the user chose to use without a keyring until the app quits, per host (never written).
_session_keys: dict[str, str] = {}
_writes = threading.Lock()  # one keyring write at a time, so an undo sees what it replaced


class SecretStoreUnavailable(Exception):
    """No usable OS keyring; the message says what to do instead."""


def get_api_key(host: str) -> str | None:
    try:
        return _find_api_key(host)
    except KeyringError as exc:
        _unavailable(exc)
        return None


def has_api_key(host: str) -> bool | None:
    """Whether a key is kept for ``host``; None: the keyring cannot tell (none, or a locked one)."""
    try:
        return _find_api_key(host) is not None
    except KeyringError as exc:
        _unavailable(exc)
        return None


def _find_api_key(host: str) -> str | None:
    env = os.environ.get(ENV_KEY)
    if env:
        return env.strip()
    if host in _session_keys:
        return _session_keys[host]
    value: str | None = keyring.get_password(SERVICE, host)
    return value


def _unavailable(exc: KeyringError) -> None:
    log.warning("OS keyring unavailable (%s); set %s instead", exc.__class__.__name__, ENV_KEY)


def set_api_key(host: str, key: str) -> str | None:
    """Keep ``key`` for ``host`` in the keyring; returns the key it replaced (None: none)."""
    try:
        with _writes:
            previous: str | None = keyring.get_password(SERVICE, host)
            keyring.set_password(SERVICE, host, key.strip())
    except KeyringError as exc:
        raise SecretStoreUnavailable(
            f"No OS keyring is available ({exc}). Set {ENV_KEY} in the environment instead."
        ) from exc
    return previous


def undo_set_api_key(host: str, key: str, previous: str | None) -> None:
    """Put back the key ``set_api_key(host, key)`` replaced, unless another was kept since."""
    try:
        with _writes:
            if keyring.get_password(SERVICE, host) != key.strip():
                return
            if previous is None:
                keyring.delete_password(SERVICE, host)
            else:
                keyring.set_password(SERVICE, host, previous)
    except KeyringError as exc:
        log.warning("could not put the previous API key back (%s)", exc.__class__.__name__)


def keep_api_key_for_session(host: str, key: str) -> None:
    """No keyring: ``key`` is used for ``host`` only (never sent to another server chosen later),
    in this process only, and written nowhere."""
    _session_keys[host] = key.strip()


def keyring_check() -> tuple[bool, str]:
    """Whether a key can be kept (an OS keyring, or the key in the environment), and what holds it."""
    try:
        backend = keyring.get_keyring()
    except KeyringError as exc:  # pragma: no cover - depends on the machine
        backend, name = None, f"unavailable ({exc})"
    else:
        name = f"{type(backend).__module__}.{type(backend).__name__}"
    try:
        usable = backend is not None and float(backend.priority) > 0  # keyring's "fail" backend has priority 0
    except (RuntimeError, AttributeError, TypeError, ValueError):  # a backend that cannot say: it was chosen
        usable = backend is not None
    if usable:
        return True, name
    if os.environ.get(ENV_KEY):
        return True, f"no OS keyring ({name}); the key comes from {ENV_KEY}"
    if _session_keys:
        return True, f"no OS keyring ({name}); the key is kept until the app quits"
    return False, f"no OS keyring ({name}): keys cannot be stored; set {ENV_KEY} instead"
