"""Where things live and the typed settings (secrets never go here: see ``secrets``)."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)
APP = "desktop-recorder"
DEFAULT_MIC_LABEL = "Me"  # the microphone's speaker when the user gave no name
DEFAULT_HOSTS = {"us": "https://us.posthog.com", "eu": "https://eu.posthog.com"}


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    log_dir: Path
    cache_dir: Path  # downloaded models: can be deleted, they are fetched again

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def database(self) -> Path:
        return self.data_dir / "recordings.sqlite3"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @classmethod
    def resolve(cls) -> AppPaths:
        """``DESKTOP_RECORDER_HOME`` relocates everything; else the platform's own dirs."""
        home = os.environ.get("DESKTOP_RECORDER_HOME")
        if home:
            root = Path(home).expanduser()
            paths = cls(root / "config", root / "data", root / "logs", root / "cache")
        else:
            paths = cls(
                Path(platformdirs.user_config_dir(APP)),
                Path(platformdirs.user_data_dir(APP)),
                Path(platformdirs.user_log_dir(APP)),
                Path(platformdirs.user_cache_dir(APP)),
            )
        for d in (paths.config_dir, paths.data_dir, paths.log_dir, paths.audio_dir, paths.models_dir):
            d.mkdir(parents=True, exist_ok=True)
        return paths


@dataclass(frozen=True)
class Settings:
    host: str | None = None
    project_id: str = "@current"
    user_name: str | None = None
    others_name: str = "Others"
    default_platform: str = "desktop_audio"
    model: str = "auto"  # auto (embedded tiny.en) | a faster-whisper model name | a model folder
    language: str = "en"  # a language code, or auto (detect; multilingual models only)
    device: str = "auto"  # auto (CUDA if present) | cpu | cuda
    compute_type: str = "auto"  # auto (int8 on CPU, float16 on GPU) | any CTranslate2 compute type
    mic: str = "auto"
    system: str = "auto"

    def with_env(self) -> Settings:
        """Environment overrides (not saved): ``POSTHOG_HOST``, ``POSTHOG_PROJECT_ID``."""
        return replace(self, **env_overrides())


ENV_FIELDS = {"host": "POSTHOG_HOST", "project_id": "POSTHOG_PROJECT_ID"}


def env_overrides() -> dict[str, str]:
    return {name: os.environ[var] for name, var in ENV_FIELDS.items() if os.environ.get(var)}


def load_settings(paths: AppPaths) -> Settings:
    """Settings from the file, with env overrides. A corrupt file is set aside, never lost."""
    return _read_file(paths).with_env()


def _read_file(paths: AppPaths) -> Settings:
    path = paths.settings_file
    data: dict[str, object] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
            data = loaded
        except (ValueError, OSError) as exc:
            backup = path.with_suffix(f".corrupt-{int(time.time())}.json")
            log.error("settings file %s is unreadable (%s); moved to %s, using defaults", path, exc, backup)
            path.replace(backup)
    known = {f.name for f in fields(Settings)}
    values = {k: v for k, v in data.items() if k in known and (v is None or isinstance(v, str))}
    return Settings(**values)  # type: ignore[arg-type]


def _same_value(a: str | None, b: str | None) -> bool:
    """Equal up to what the app normalises away (spaces, a trailing slash of a host)."""
    return (a or "").strip().rstrip("/") == (b or "").strip().rstrip("/")


def save_settings(paths: AppPaths, settings: Settings) -> None:
    """Atomic write: a crash mid-save leaves the old file intact. A value that only came from the
    environment (unchanged by the user) is not written: the file keeps its own."""
    on_disk = _read_file(paths)
    for name, value in env_overrides().items():
        if _same_value(getattr(settings, name), value):
            settings = replace(settings, **{name: getattr(on_disk, name)})
    tmp = paths.settings_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    os.replace(tmp, paths.settings_file)
