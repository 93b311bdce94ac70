"""Named faster-whisper models (``base.en``, ``small``, ``large-v3``, ``distil-*``…), fetched once.

huggingface_hub does the fetching (resume, Xet storage, the cache layout, ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``); a model already in the cache loads without the network. Progress is read
from the bytes that have reached the cache, which works the same for every transfer path the
hub uses, and is reported as ``progress(done_bytes, total_bytes)``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path

from transcription.model import ModelChoice, ModelUnavailable, resolve_model

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
# What faster-whisper itself fetches of a model repository (faster_whisper.utils.download_model).
MODEL_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
POLL_S = 0.25


def model_names() -> list[str]:
    from faster_whisper.utils import available_models

    return list(available_models())


def repo_for(name: str) -> str:
    """The hub repository of a faster-whisper model name, or ``owner/repo`` as given."""
    if "/" in name:
        return name
    from faster_whisper import utils

    repo = utils._MODELS.get(name)  # the name → repository table faster-whisper keeps
    if repo is None:
        raise ModelUnavailable(f"Unknown model {name!r}. Known models: {', '.join(model_names())}, or a folder path.")
    return str(repo)


def cached_model(name: str, cache_dir: Path) -> Path | None:
    """The model's folder if it is fully in the cache (no network), else None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(repo_for(name), cache_dir=str(cache_dir), allow_patterns=MODEL_FILES,
                                      local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        return None
    except HFValidationError as exc:  # "foo/bar baz": not a repository name either
        raise ModelUnavailable(f"{name!r} is neither a model folder nor a model name "
                               f"(known: {', '.join(model_names())}, or owner/repository)") from exc
    complete = all((path / f).exists() for f in REQUIRED_FILES)  # an interrupted fetch is fetched again
    return path if complete else None


def download_model(name: str, cache_dir: Path, progress: Progress | None = None) -> Path:
    """The model's folder, fetched into ``cache_dir`` first if needed. Clear errors when offline."""
    found = cached_model(name, cache_dir)
    if found is not None:
        return found
    progress = _safe(progress)
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import OfflineModeIsEnabled, RepositoryNotFoundError
    from huggingface_hub.utils.tqdm import disable_progress_bars

    disable_progress_bars()  # the caller shows progress its own way
    repo = repo_for(name)
    endpoint = os.environ.get("HF_ENDPOINT") or None  # read per call: the hub reads it once, at import
    try:
        info = HfApi(endpoint=endpoint).model_info(repo, files_metadata=True)
        total = sum(s.size or 0 for s in info.siblings or () if _wanted(s.rfilename))
        with _CacheWatch(cache_dir / f"models--{repo.replace('/', '--')}" / "blobs", total, progress):
            path = Path(snapshot_download(repo, cache_dir=str(cache_dir), allow_patterns=MODEL_FILES,
                                          endpoint=endpoint))
    except OfflineModeIsEnabled as exc:
        raise ModelUnavailable(f"Model {name!r} is not downloaded and HF_HUB_OFFLINE is set. "
                               "Use the embedded model (auto), or download it once online.") from exc
    except RepositoryNotFoundError as exc:
        raise ModelUnavailable(f"Model {name!r}: repository {repo} not found on the model hub.") from exc
    except Exception as exc:  # HTTP errors, and the connection errors of the hub's HTTP stack
        first_line = (str(exc).splitlines() or [""])[0]
        raise ModelUnavailable(f"Cannot download model {name!r} ({exc.__class__.__name__}: {first_line}). "
                               "Check the network connection, or use the embedded model (auto).") from exc
    if progress:
        progress(total, total)
    return path


def _safe(progress: Progress | None) -> Progress | None:
    """A progress callback that fails (its window closed) is dropped, not allowed to fail the download."""
    if progress is None:
        return None
    broken = threading.Event()

    def report(done: int, total: int) -> None:
        if broken.is_set():
            return
        try:
            progress(done, total)
        except Exception:  # whatever the receiver raises
            log.warning("model download progress could not be shown; downloading on", exc_info=True)
            broken.set()

    return report


def _wanted(filename: str) -> bool:
    return any(fnmatch(filename, pattern) for pattern in MODEL_FILES)


class _CacheWatch:
    """Reports the bytes in ``blobs`` (finished files and ``.incomplete`` ones) while a download runs."""

    def __init__(self, blobs: Path, total: int, progress: Progress | None) -> None:
        self._blobs, self._total, self._progress = blobs, total, progress
        self._start = self._bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-download-progress", daemon=True)

    def _bytes(self) -> int:
        try:
            return sum(p.stat().st_size for p in self._blobs.iterdir() if p.is_file())
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self._report()

    def _report(self) -> None:
        if self._progress:
            self._progress(min(self._bytes() - self._start, self._total), self._total)

    def __enter__(self) -> _CacheWatch:
        self._report()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def prepare_model(spec: str, cache_dir: Path, progress: Progress | None = None,
                  earlier_dirs: tuple[Path, ...] = ()) -> ModelChoice:
    """``auto`` or a folder as they are; a model name found in ``earlier_dirs`` (where older
    versions downloaded models) or ``cache_dir``, else fetched into ``cache_dir``."""
    choice = resolve_model(spec)
    if choice.is_local:
        return choice
    for folder in earlier_dirs:
        found = cached_model(choice.path_or_name, folder) if folder.is_dir() else None
        if found is not None:
            return replace(choice, path_or_name=str(found))
    return replace(choice, path_or_name=str(download_model(choice.path_or_name, cache_dir, progress)))
