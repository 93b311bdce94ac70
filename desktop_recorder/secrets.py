"""The personal API key: ``POSTHOG_PERSONAL_API_KEY`` for headless use, else the OS keyring.

The key is never written to a settings file or a log. Keyring failures degrade to a message.
"""

from __future__ import annotations

import logging
import os

import keyring
from keyring.errors import KeyringError

log = logging.getLogger(__name__)
SERVICE = "desktop-recorder"
ENV_KEY = "POSTHOG_PERSONAL_API_KEY"


class SecretStoreUnavailable(Exception):
    """No usable OS keyring; the message says what to do instead."""


def get_api_key(host: str) -> str | None:
    env = os.environ.get(ENV_KEY)
    if env:
        return env.strip()
    try:
        value: str | None = keyring.get_password(SERVICE, host)
    except KeyringError as exc:
        log.warning("OS keyring unavailable (%s); set %s instead", exc.__class__.__name__, ENV_KEY)
        return None
    return value


def set_api_key(host: str, key: str) -> None:
    try:
        keyring.set_password(SERVICE, host, key.strip())
    except KeyringError as exc:
        raise SecretStoreUnavailable(
            f"No OS keyring is available ({exc}). Set {ENV_KEY} in the environment instead."
        ) from exc


def keyring_backend_name() -> str:
    try:
        return type(keyring.get_keyring()).__name__
    except KeyringError as exc:  # pragma: no cover - depends on the machine
        return f"unavailable ({exc})"
