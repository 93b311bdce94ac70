"""Streaming transcription of one source: ``insert_audio`` → ``poll`` → events, then ``finish``.

Commit policy (pure; the model sits behind ``Transcriber``):
- Silero VAD scores every 32 ms window as audio arrives. Silence is never transcribed.
- An utterance closes when ``end_silence_ms`` of silence follows speech; it is then transcribed
  once and committed as final segments. Finals therefore appear about ``end_silence_ms`` + one
  model pass after the speaker pauses.
- Context: the finals just before it (up to ``context_s`` of audio) are decoded again in the same
  pass, their text forced as the decoder's prefix (every long pause among them cut short).
  Whisper then hears the utterance as the continuation it is, as in an offline pass, at the cost
  of one pass over a longer buffer (the forced words are not searched for); a phrase decoded
  alone, without what was said before it, is misheard far more often.
- While someone speaks, the utterance so far is transcribed every ``partial_every_ms`` and shown
  as a partial (never sent to the server); none while the speaker is silent (the words have not
  changed, and if the pause lasts the final comes: partials are most of the model's work), the
  next one at the first voiced window after it.
- An utterance longer than ``long_utterance_s`` commits early the words two consecutive
  passes agree on (LocalAgreement-2) that end ``holdback_s`` before the newest audio, so a
  monologue without pauses still becomes final and the buffer stays far below Whisper's 30 s.
  Past ``max_utterance_s``, a pass that heard no words at all (music, noise) hands the audio
  so far to a final pass, which decides it as any closed utterance.
- The prompt holds only committed text of audio that has left the buffer. Partials get only
  ``default_prompt``: every prompt token costs decoder time on every pass, and a partial is
  replaced by its final anyway (not so the passes over a long utterance, which commit finals).
- Behind (several utterances closed and waiting: a slow machine, a busy CPU), the waiting ones
  are decoded together, up to ``merge_backlog_s``: one model pass costs about the same for 3 s
  or 20 s of audio (Whisper's encoder always sees a 30 s window), so catching up takes fewer
  passes. Audio is never dropped.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from transcription.guards import collapse_repeats, compression_ratio, is_doubtful, is_hallucination
from transcription.model import confidence
from transcription.types import (
    SAMPLE_RATE_HZ,
    AsrSegment,
    AsrWord,
    Audio,
    FinalSegment,
    PartialText,
    Source,
    Transcriber,
    TranscriptEvent,
)
from transcription.vad import WINDOW, StreamingVad

log = logging.getLogger(__name__)
SR = SAMPLE_RATE_HZ


@dataclass(frozen=True)
class StreamConfig:
    speech_threshold: float = 0.5
    silence_threshold: float = 0.35
    end_silence_ms: int = 500
    pre_roll_ms: int = 250
    post_roll_ms: int = 200
    min_speech_ms: int = 200
    partial_every_ms: int = 1000
    long_utterance_s: float = 12.0
    max_utterance_s: float = 24.0
    holdback_s: float = 1.0
    # Committed text given as the prompt (text before the context's audio). Replayed, 2 cores:
    # 9.5 minutes of distinct text (the GPL-3 terms read by espeak-ng, 1,511 words) 12.2 % live
    # WER with 200 characters, 12.0 % with 600 (offline 10.8 %), for ~10 % more CPU; 16 one-minute
    # files (2,354 words) 7.77 % with 200, 600 or 1000. It pays where words recur: 11 minutes
    # reading each of four texts three times in a row 6.9 / 6.0 / 5.5 % with 200 / 600 / 1000
    # (offline 5.4 %, real time), but 1000 took peak RSS from 310 to 358 MB (8 beams carry it).
    # (Before finals were decoded after their context, 500 had hurt: 19.8 -> 21.2 % on 10 min.)
    prompt_chars: int = 600
    # Audio of earlier finals decoded again before an utterance (see above). 20 s, not 10: replaying
    # 17 files (3,382 words) from three start offsets gave live WER 8.67 % instead of 9.44 %
    # (offline 7.97 %). Each forced word costs a decoder step per beam, so finals cost ~35 % more CPU;
    # the cheaper partials (prompt, every 1000 ms instead of 700) pay for it.
    context_s: float = 20.0
    # Every longer pause among the context's finals and the utterance is cut to this. Each side of
    # a call pauses while the other speaks: its turns used to get no context after a pause over
    # 3 s, and the 48 s call's live WER was 10.2 % (offline 8.7 %); with context, 7.1-8.7 %.
    context_join_s: float = 1.0
    # A context pass whose new words end this long before the utterance ends (its post-roll
    # included) has stopped early (see ``_finalise``). Over 179 passes of 2,481 words, the new
    # words ended 0.01 s before the utterance's end in every pass that went right, and 5.2 s
    # before it in the one that did not.
    stopped_early_s: float = 1.0
    merge_backlog_s: float = 20.0  # closed utterances waiting together are decoded in one pass, up to this
    # Prompt when nothing has been committed yet: without one, tiny.en misheard the first words of
    # a recording in 11 of 12 variants of the JFK clip ("And so am I fellow"); with it, 0 of 12.
    default_prompt: str | None = "Meeting transcript."

    def samples(self, ms: float) -> int:
        return int(ms * SR / 1000)


@dataclass(frozen=True)
class _Utterance:
    start: int  # absolute samples from recording start
    end: int


@dataclass(frozen=True)
class _Said:
    """A final's text and where its audio lies (absolute samples)."""

    start: int
    end: int
    text: str


class StreamingEngine:
    def __init__(
        self, source: Source, transcriber: Transcriber, vad: StreamingVad, config: StreamConfig | None = None
    ) -> None:
        self.source = source
        self.config = config or StreamConfig()
        self._asr = transcriber
        self._vad = vad
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute sample index of self._buf[0]
        self._vad_pos = 0  # absolute sample index up to which VAD has scored
        self._onset: int | None = None  # first voiced window of the utterance in progress
        self._utt_start = 0  # where its not-yet-final audio starts (pre-roll, or after early commits)
        self._voiced_end = 0
        self._closed: list[_Utterance] = []
        self._partial_at = 0
        self._previous_words: list[AsrWord] = []
        self._committed: list[_Said] = []  # recent finals: the prompt, and the context of the next decode
        self._context_floor = 0  # context never reaches back over audio whose text was not kept

    # -- input -------------------------------------------------------------------------------

    @property
    def received_s(self) -> float:
        return (self._buf_start + len(self._buf)) / SR

    def _pending_from(self) -> int | None:
        """First sample of audio that still has to become final, if any."""
        return self._closed[0].start if self._closed else (self._utt_start if self._onset is not None else None)

    @property
    def idle(self) -> bool:
        """Nobody is speaking and nothing heard waits to become final: a pause."""
        return self._pending_from() is None

    @property
    def backlog_s(self) -> float:
        """Audio heard but not yet final (what a slow transcriber has still to do)."""
        first = self._pending_from()
        return 0.0 if first is None else max(0.0, (self._vad_pos - first) / SR)

    @property
    def settled_ms(self) -> float:
        """Audio time before which this stream has nothing left to finalise (no final to come
        starts earlier: the next utterance's pre-roll reaches back before the speech)."""
        first = self._pending_from()
        if first is None:
            first = max(self._buf_start, self._vad_pos - self.config.samples(self.config.pre_roll_ms))
        return first * 1000 / SR

    def insert_audio(self, samples: Audio) -> None:
        self._buf = np.concatenate([self._buf, samples.astype(np.float32, copy=False)])
        for prob in self._vad.push(samples):
            self._on_window(prob)
            self._vad_pos += WINDOW
        self._trim()

    def _on_window(self, prob: float) -> None:
        c = self.config
        end = self._vad_pos + WINDOW
        if self._onset is None:
            if prob >= c.speech_threshold:
                self._onset = self._vad_pos
                self._utt_start = max(self._buf_start, self._vad_pos - c.samples(c.pre_roll_ms))
                self._voiced_end = end
                self._partial_at = self._vad_pos
            return
        if prob >= c.silence_threshold:
            self._voiced_end = end
        elif end - self._voiced_end >= c.samples(c.end_silence_ms):
            self._close_utterance()

    def _close_utterance(self) -> None:
        assert self._onset is not None
        c = self.config
        if self._voiced_end - self._onset >= c.samples(c.min_speech_ms) and self._voiced_end > self._utt_start:
            self._closed.append(_Utterance(self._utt_start, self._voiced_end + c.samples(c.post_roll_ms)))
        else:  # too short to transcribe: not context for the next one either
            self._context_floor = max(self._context_floor, self._voiced_end)
        self._onset = None
        self._previous_words = []

    def _trim(self) -> None:
        """Drop audio nobody needs any more: all but the context before the first audio not yet
        final (however far behind the transcriber is: audio is never dropped)."""
        c = self.config
        first = self._pending_from()
        keep_from = self._vad_pos - c.samples(c.pre_roll_ms) if first is None else first
        keep_from -= c.samples(c.context_s * 1000)  # earlier finals' audio: the next decode's context
        cut = keep_from - self._buf_start
        if cut > 0:
            self._buf = self._buf[cut:]
            self._buf_start += cut

    def _audio(self, start: int, end: int) -> Audio:
        lo = max(start - self._buf_start, 0)
        return self._buf[lo: max(end - self._buf_start, lo)]

    # -- work --------------------------------------------------------------------------------

    def has_work(self) -> bool:
        return bool(self._closed) or self._partial_due()

    def has_final_work(self) -> bool:
        return bool(self._closed)

    def _partial_due(self) -> bool:
        c = self.config
        return self._onset is not None and self._voiced_end - self._partial_at >= c.samples(c.partial_every_ms)

    def poll(self) -> list[TranscriptEvent]:
        """Do at most one model pass; finals of closed utterances first, then a partial."""
        if self._closed:
            utt = self._closed.pop(0)
            limit = self.config.samples(self.config.merge_backlog_s * 1000)
            while self._closed and self._closed[0].end - utt.start <= limit:  # behind: catch up in one pass
                utt = _Utterance(utt.start, self._closed.pop(0).end)
            events = self._finalise(utt)
            self._trim()
            if not any(isinstance(ev, FinalSegment) for ev in events):  # all of it dropped (music's "Thank you.")
                events.append(PartialText(self.source, round(utt.start * 1000 / SR, 1), ""))  # its partial goes too
            return events
        if self._partial_due():
            return self._partial()
        return []

    def finish(self) -> list[TranscriptEvent]:
        """End of stream: everything heard becomes final."""
        if self._onset is not None:
            self._voiced_end = max(self._voiced_end, self._vad_pos)
            self._close_utterance()
        events: list[TranscriptEvent] = []
        while self._closed:
            events.extend(self.poll())
        return events

    def _prompt(self, before: int) -> str | None:
        """Committed text of audio that ends before ``before`` (never of audio being decoded)."""
        text = " ".join(said.text for said in self._committed if said.end <= before)
        return text[-self.config.prompt_chars:].strip() or self.config.default_prompt

    def _context(self, utt: _Utterance) -> list[_Said]:
        """The finals just before ``utt`` that fit in ``context_s`` (and Whisper's 30 s window)."""
        c = self.config
        earliest = max(self._buf_start, self._context_floor, utt.start - c.samples(c.context_s * 1000),
                       utt.end - c.samples(28_000))
        taken: list[_Said] = []
        for said in reversed(self._committed):
            if said.start < earliest:
                break
            taken.insert(0, said)
        return taken

    def _finalise(self, utt: _Utterance) -> list[TranscriptEvent]:
        """Decode the utterance after the earlier finals' audio, their text forced as the prefix;
        decode it alone when that pass goes wrong."""
        context = self._context(utt)
        if not context:
            return self._finals(utt.start, self._alone(utt))
        known = " ".join(said.text for said in context)
        audio, offset = self._joined(context, utt)
        new = _after_prefix(self._asr.transcribe(audio, prompt=self._prompt(context[0].start), prefix=known), known)
        if new is None:  # an answer that does not start with the known text is not trusted
            return self._finals(utt.start, self._alone(utt))
        heard = [seg for seg in new if not _rejected(seg)]
        if not heard:
            # Nothing after the known text (Whisper sometimes ends a pass there, on speech too), or
            # only made-up text (a misheard context once led to "end." for a whole sentence): decode
            # it alone. That answer must be confident (music after speech came out as "Thank you.").
            log.debug("%s: no new words after the context; decoding alone", self.source)
            finals = self._finals(utt.start, self._alone(utt), strict=True)
            if not finals:  # none of this audio's text was kept: it is no context for the next
                self._context_floor = max(self._context_floor, utt.end)
            return finals
        if utt.end - (offset + int(heard[-1].end_s * SR)) > self.config.samples(self.config.stopped_early_s * 1000):
            # The pass ended well before the utterance: Whisper closed its window on a timestamp
            # and the rest of the speech was never decoded (a sentence's last 7 words were lost so,
            # and its misheard start misled the next pass). Decoded alone, the utterance replaces
            # it if that yields more confident words (its doubtful ones are dropped then, even
            # where the context pass had heard them).
            alone = self._alone(utt)
            if _word_count(s for s in alone if not _rejected(s, strict=True)) > _word_count(heard):
                log.debug("%s: the context pass stopped early; decoded alone", self.source)
                return self._finals(utt.start, alone, strict=True)
        return self._finals(offset, new, floor=utt.start)

    def _alone(self, utt: _Utterance) -> list[AsrSegment]:
        return self._asr.transcribe(self._audio(utt.start, utt.end), prompt=self._prompt(utt.start))

    def _finals(self, offset: int, segments: list[AsrSegment], *, floor: int = 0, strict: bool = False
                ) -> list[TranscriptEvent]:
        return [f for f in (self._final(offset, seg, floor=floor, strict=strict) for seg in segments) if f is not None]

    def _joined(self, context: list[_Said], utt: _Utterance) -> tuple[Audio, int]:
        """The audio of the context finals and of the utterance, every pause between them longer
        than ``context_join_s`` cut down to it (its first and last halves kept), and the offset
        that puts a sample of the utterance's part back on the recording's clock."""
        keep = self.config.samples(self.config.context_join_s * 1000)
        pieces: list[Audio] = []
        start, end = context[0].start, context[0].end
        spans: list[_Said | _Utterance] = [*context[1:], utt]
        for span in spans:
            if span.start - end > keep:
                pieces.append(self._audio(start, end + keep // 2))
                start = span.start - (keep - keep // 2)
            end = max(end, span.end)
        pieces.append(self._audio(start, utt.end))
        return np.concatenate(pieces), start - sum(len(p) for p in pieces[:-1])

    def _final(self, offset: int, seg: AsrSegment, *, floor: int = 0, strict: bool = False) -> FinalSegment | None:
        if _rejected(seg, strict=strict):
            log.debug("%s: dropped likely hallucination %r", self.source, seg.text)
            self._context_floor = max(self._context_floor, offset + int(seg.end_s * SR))
            return None
        text = collapse_repeats(seg.text)
        start = max(offset + int(seg.start_s * SR), floor)
        end = max(offset + int(seg.end_s * SR), start)
        self._committed = [*self._committed[-20:], _Said(start, end, text)]
        start_ms, end_ms = start * 1000 / SR, end * 1000 / SR
        return FinalSegment(
            self.source, round(float(start_ms), 1), round(float(end_ms), 1), text, confidence(seg.avg_logprob)
        )

    def _partial(self) -> list[TranscriptEvent]:
        c = self.config
        start = self._utt_start
        self._partial_at = self._vad_pos
        long = (self._vad_pos - start) >= c.samples(c.long_utterance_s * 1000)
        prompt = self._prompt(start) if long else c.default_prompt  # a long one's pass commits finals
        segments = self._asr.transcribe(self._audio(start, self._vad_pos), prompt=prompt,
                                        word_timestamps=long, final=False)
        events: list[TranscriptEvent] = []
        if long:
            events.extend(self._commit_agreed(start, segments))
            if events:  # the committed words are final now; the partial is what follows them
                segments = [s for s in segments if s.start_s * SR >= self._utt_start - start]
        text = " ".join(s.text for s in segments if not is_hallucination(s)).strip()
        events.append(PartialText(self.source, round(self._utt_start * 1000 / SR, 1), text))
        return events

    def _commit_agreed(self, start: int, segments: list[AsrSegment]) -> list[TranscriptEvent]:
        """LocalAgreement-2 on a long utterance: commit the stable prefix, restart after it."""
        c = self.config
        words = [w for s in segments if not is_hallucination(s) for w in s.words]
        limit_s = (self._vad_pos - start) / SR - c.holdback_s
        agreed = 0
        for old, new in zip(self._previous_words, words, strict=False):
            if _norm(old.text) != _norm(new.text) or new.end_s > limit_s:
                break
            agreed += 1
        if agreed == 0 and (self._vad_pos - start) >= c.samples(c.max_utterance_s * 1000):
            agreed = sum(1 for w in words if w.end_s <= limit_s)  # forced: never outgrow the window
            if not words:
                # No word in this greedy pass (music, noise, or speech the guards dropped): the
                # audio so far goes to a final pass (8 beams, strict guards) to decide, as if
                # closed; else the buffer would grow and the stream never settle (nothing of either
                # stream would go to the server, which takes lines in time order).
                cut = start + int(limit_s * SR)
                self._closed.append(_Utterance(start, cut))
                self._utt_start = cut
                self._previous_words = []
                return []
        self._previous_words = words
        if agreed == 0:
            return []
        taken = words[:agreed]
        final = self._final(start, _from_words(None, taken))
        self._utt_start = start + int(taken[-1].end_s * SR)
        self._previous_words = words[agreed:]
        self._previous_words = [
            AsrWord(w.start_s - taken[-1].end_s, w.end_s - taken[-1].end_s, w.text, w.probability)
            for w in self._previous_words
        ]
        self._trim()
        return [final] if final else []


def _from_words(seg: AsrSegment | None, words: list[AsrWord]) -> AsrSegment:
    """A segment made of some of a segment's words; confidence = geometric mean of their probabilities."""
    text = "".join(w.text for w in words).strip()
    logprob = float(np.mean(np.log([max(w.probability, 1e-6) for w in words])))
    no_speech = seg.no_speech_prob if seg else 0.0
    ratio = seg.compression_ratio if seg else 1.0
    return AsrSegment(words[0].start_s, words[-1].end_s, text, logprob, no_speech, ratio, tuple(words))


def _rejected(seg: AsrSegment, *, strict: bool = False) -> bool:
    """What the guards drop: made-up text; strict, also text the model is unsure of."""
    return is_hallucination(seg) or (strict and is_doubtful(seg))


def _word_count(segments: Iterable[AsrSegment]) -> int:
    return sum(len(seg.text.split()) for seg in segments)


def _after_prefix(segments: list[AsrSegment], prefix: str) -> list[AsrSegment] | None:
    """The new part of an answer whose text was forced to start with ``prefix``: the segments with
    the forced text (and punctuation left over from it) cut off. Compared letter by letter, so
    spacing and punctuation may differ. None if the answer does not start with the prefix, or a
    word straddles its end (in scripts written with spaces; in Chinese, Japanese or Thai the new
    text simply follows the last forced character)."""
    target, seen = _norm(prefix), 0
    out: list[AsrSegment] = []
    for seg in segments:
        text, i = seg.text, 0
        while i < len(text) and seen < len(target):
            letters = _norm(text[i])
            if letters:
                if not target.startswith(letters, seen):
                    return None
                seen += len(letters)
            i += 1
        if seen < len(target):
            continue  # all forced
        if i == 0:
            out.append(seg)  # wholly new
            continue
        new = _new_text(text[i:], last_forced=text[i - 1])
        if new is None:
            return None
        if new:
            out.append(replace(seg, text=new, words=(), compression_ratio=compression_ratio(new)))
    return out if seen == len(target) else None


def _new_text(rest: str, last_forced: str) -> str | None:
    """What follows the forced text in a segment (``rest``): punctuation left over from the forced
    text dropped. None if ``rest`` goes on with letters of the last forced word."""
    stuck = rest.split()[0] if rest[:1].strip() else ""  # glued to the last forced character
    if _norm(stuck):
        if not _unspaced(last_forced):
            return None
        return rest[next(k for k, ch in enumerate(rest) if _norm(ch)):]  # Chinese, Japanese, Thai...
    words = rest[len(stuck):].split()
    while words and not _norm(words[0]):
        words.pop(0)
    return " ".join(words)


def _unspaced(ch: str) -> bool:
    """A character of a script written without spaces between words: Chinese, Japanese (wide
    characters other than Korean Hangul, which is spaced), Thai, Lao, Myanmar, Khmer."""
    if unicodedata.name(ch, "").startswith("HANGUL"):
        return False
    return unicodedata.east_asian_width(ch) in ("W", "F") or any(
        lo <= ord(ch) <= hi for lo, hi in ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF)))


def _norm(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())
