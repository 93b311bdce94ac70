"""The commit policy of the streaming engine, with a scripted transcriber and an energy VAD."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from transcription.stream import StreamConfig, StreamingEngine, _after_prefix
from transcription.types import AsrSegment, AsrWord, FinalSegment, PartialText
from transcription.vad import WINDOW, StreamingVad

SR = 16_000


def energy_scorer(audio: np.ndarray) -> np.ndarray:
    """1.0 for a window with signal, 0.0 for silence: a deterministic stand-in for Silero."""
    windows = audio.reshape(-1, WINDOW)
    return (np.abs(windows).max(axis=1) > 0.01).astype(np.float32)


@dataclass
class Call:
    seconds: float
    prompt: str | None
    prefix: str | None
    word_timestamps: bool
    final: bool


@dataclass
class ScriptedTranscriber:
    """Answers each call with words spread over the audio it got; records what it was asked.

    Like the real model, its answer starts with the forced ``prefix`` (an empty script entry: the
    model said nothing after it)."""

    words_per_call: list[list[str]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    no_speech: float = 0.0
    avg_logprob: float = -0.1
    honours_prefix: bool = True
    logprob_per_call: list[float] = field(default_factory=list)  # overrides avg_logprob, call by call

    def transcribe(self, audio, *, prompt=None, prefix=None, word_timestamps=False, final=True):
        self.calls.append(Call(len(audio) / SR, prompt, prefix, word_timestamps, final))
        words = self.words_per_call.pop(0) if self.words_per_call else ["hello"]
        words = (prefix.split() if prefix and self.honours_prefix else []) + words
        step = len(audio) / SR / max(len(words), 1)
        ws = tuple(AsrWord(i * step, (i + 1) * step, f" {w}", 0.9) for i, w in enumerate(words))
        logprob = self.logprob_per_call.pop(0) if self.logprob_per_call else self.avg_logprob
        return [AsrSegment(0.0, len(audio) / SR, " ".join(words), logprob, self.no_speech, 1.2, ws)]


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def run(engine: StreamingEngine, audio: np.ndarray, block: int = 1600) -> list:
    events = []
    for i in range(0, len(audio), block):
        engine.insert_audio(audio[i: i + block])
        while engine.has_work():
            events += engine.poll()
    return events


def make(asr: ScriptedTranscriber, **config) -> StreamingEngine:
    return StreamingEngine("system", asr, StreamingVad(energy_scorer), StreamConfig(**config))


def test_silence_is_never_transcribed():
    asr = ScriptedTranscriber()
    engine = make(asr)
    assert run(engine, silence(10)) == [] and engine.finish() == []
    assert asr.calls == []


def test_utterance_is_final_after_its_trailing_silence_with_its_start_time():
    asr = ScriptedTranscriber()
    engine = make(asr, partial_every_ms=10_000)
    events = run(engine, np.concatenate([silence(2), tone(1.5), silence(0.4)]))
    assert events == []  # 400 ms of silence is not yet the end of the utterance
    events = run(engine, silence(0.3))
    finals = [e for e in events if isinstance(e, FinalSegment)]
    assert [f.text for f in finals] == ["hello"]
    assert 2000 - 300 <= finals[0].start_ms <= 2000  # pre-roll before the onset
    assert asr.calls[0].final and 1.5 <= asr.calls[0].seconds <= 2.2


def test_partials_while_speaking_are_cheap_and_never_final():
    asr = ScriptedTranscriber(words_per_call=[["par"], ["partial"], ["the", "final"]])
    engine = make(asr, partial_every_ms=700)
    events = run(engine, np.concatenate([tone(1.6), silence(0.8)]))
    partials = [e for e in events if isinstance(e, PartialText)]
    finals = [e for e in events if isinstance(e, FinalSegment)]
    assert [p.text for p in partials] == ["par", "partial"]
    assert [f.text for f in finals] == ["the final"]
    assert [c.final for c in asr.calls] == [False, False, True]


def test_a_partial_whose_final_pass_kept_nothing_is_taken_back():
    """Music after speech: the partials heard "thank you", the final pass is too unsure to keep
    it. The grey text must not stay on screen until that side speaks again (or for ever)."""
    asr = ScriptedTranscriber(words_per_call=[["thank"], ["thank", "you"], ["thank", "you"]],
                              logprob_per_call=[-0.1, -0.1, -3.0])
    engine = make(asr, partial_every_ms=700)
    events = run(engine, np.concatenate([tone(1.6), silence(0.8)]))
    assert not [e for e in events if isinstance(e, FinalSegment)]
    assert [e.text for e in events if isinstance(e, PartialText)] == ["thank", "thank you", ""]


def test_partials_get_only_the_default_prompt_finals_the_committed_text():
    asr = ScriptedTranscriber(words_per_call=[["first", "part"], ["sec"], ["second", "bit"]])
    engine = make(asr, partial_every_ms=700, context_s=3.0)  # "first part" is no context: prompt only
    run(engine, np.concatenate([tone(0.5), silence(4.0), tone(1.2), silence(1.0)]))
    assert [(c.final, c.prompt) for c in asr.calls] == [
        (True, "Meeting transcript."),
        (False, "Meeting transcript."),  # cheap: the committed text would cost decoder time every pass
        (True, "first part"),
    ]


def test_passes_over_a_long_utterance_commit_finals_so_they_get_the_committed_text():
    asr = ScriptedTranscriber(words_per_call=[["first", "part"]])
    engine = make(asr, partial_every_ms=1000, long_utterance_s=3.0)
    run(engine, np.concatenate([tone(0.5), silence(4.0), tone(5.0)]))
    long_passes = [c for c in asr.calls if c.word_timestamps]
    assert long_passes and all(c.prompt == "first part" for c in long_passes)
    assert all(c.prompt == "Meeting transcript." for c in asr.calls[1:] if not c.word_timestamps)


def test_no_partial_pass_while_the_speaker_pauses():
    asr = ScriptedTranscriber()
    engine = make(asr, partial_every_ms=300)
    run(engine, tone(1.0))
    during_speech = len(asr.calls)
    assert during_speech >= 2 and not any(c.final for c in asr.calls)
    assert run(engine, silence(0.45)) == []  # a pause shorter than the end of an utterance
    assert len(asr.calls) == during_speech
    run(engine, tone(0.4))  # speech again: partials again
    assert len(asr.calls) == during_speech + 1


def test_finish_makes_speech_in_progress_final():
    engine = make(ScriptedTranscriber(words_per_call=[["cut", "off"]]), partial_every_ms=60_000)
    assert run(engine, tone(2.0)) == []
    assert [e.text for e in engine.finish() if isinstance(e, FinalSegment)] == ["cut off"]


def test_earlier_finals_are_decoded_again_as_forced_context_and_only_new_words_become_final():
    asr = ScriptedTranscriber(words_per_call=[["first", "part"], ["second", "bit"], ["third"]])
    engine = make(asr, partial_every_ms=60_000)
    events = run(engine, np.concatenate([tone(1.0), silence(1.0), tone(1.0), silence(1.0), tone(1.0), silence(1.0)]))
    finals = [e for e in events if isinstance(e, FinalSegment)]
    assert [e.text for e in finals] == ["first part", "second bit", "third"]
    assert asr.calls[0].prefix is None and asr.calls[0].prompt == "Meeting transcript."  # nothing said yet
    second, third = asr.calls[1], asr.calls[2]
    assert second.prefix == "first part" and second.seconds > 2.0  # the first utterance's audio comes too
    assert "first" not in (second.prompt or "")  # the prompt never holds text of audio being decoded
    assert third.prefix == "first part second bit" and third.seconds > 4.0
    assert 1700 <= finals[1].start_ms < 3000 and 3700 <= finals[2].start_ms < 5000  # within their own audio


def test_context_is_limited_to_context_s_of_whole_earlier_finals():
    asr = ScriptedTranscriber(words_per_call=[["one"], ["two"], ["three"]])
    engine = make(asr, partial_every_ms=60_000, context_s=3.0)
    run(engine, np.concatenate([tone(1.0), silence(1.0), tone(1.0), silence(1.0), tone(1.0), silence(1.0)]))
    assert asr.calls[2].prefix == "two" and asr.calls[2].prompt == "one"  # "one" is 4 s back: prompt only


@dataclass
class TailTranscriber(ScriptedTranscriber):
    """Puts the new words in a segment of their own over the last ``tail_s`` of the audio, after
    the forced prefix's segment: where they lie in the audio decoded is checked, not just floored."""

    tail_s: float = 1.2

    def transcribe(self, audio, *, prompt=None, prefix=None, word_timestamps=False, final=True):
        (seg,) = super().transcribe(audio, prompt=prompt, prefix=prefix, word_timestamps=word_timestamps, final=final)
        if not prefix:
            return [seg]
        new = seg.text[len(prefix):].strip()
        cut = seg.end_s - self.tail_s
        return [AsrSegment(0.0, cut, prefix, seg.avg_logprob, 0.0, 1.2, ()),
                AsrSegment(cut, seg.end_s, new, seg.avg_logprob, 0.0, 1.2, ())]


def test_context_reaches_over_long_pauses_with_the_pauses_cut_out():
    """One side of a call: the other side talks between this side's turns. The earlier turns are
    still the context, but the pauses are not decoded: each is cut to ``context_join_s``."""
    asr = TailTranscriber(words_per_call=[["one"], ["two"], ["three"]])
    engine = make(asr, partial_every_ms=60_000, context_join_s=1.0)
    turn = [tone(1.0), silence(8.0)]
    events = run(engine, np.concatenate([*turn, *turn, tone(1.0), silence(1.0)]))
    finals = [e for e in events if isinstance(e, FinalSegment)]
    assert [e.text for e in finals] == ["one", "two", "three"]
    assert asr.calls[1].prefix == "one" and 3.0 < asr.calls[1].seconds < 4.0  # 1.2 + 1.0 + 1.45 s, not 10
    assert asr.calls[2].prefix == "one two" and 5.5 < asr.calls[2].seconds < 7.0  # not 20
    # the new words land on the recording's clock (they start 1.2 s before the utterance's end)
    for final, onset in zip(finals[1:], (9.0, 18.0), strict=True):
        assert onset * 1000 - 50 <= final.start_ms <= onset * 1000 + 150
        assert (onset + 1.0) * 1000 <= final.end_ms <= (onset + 1.3) * 1000


def test_decodes_alone_when_the_model_stops_after_the_forced_context():
    asr = ScriptedTranscriber(words_per_call=[["first", "part"], [], ["ask", "not"]])
    engine = make(asr, partial_every_ms=60_000)
    events = run(engine, np.concatenate([tone(1.0), silence(1.0), tone(0.6), silence(1.0)]))
    assert [e.text for e in events if isinstance(e, FinalSegment)] == ["first part", "ask not"]
    assert len(asr.calls) == 3 and asr.calls[2].prefix is None and asr.calls[2].prompt == "first part"


def test_after_a_context_pass_heard_nothing_new_a_doubtful_answer_alone_is_dropped():
    """The context pass ends at the known text; decoded alone, the same audio gives words the
    model is unsure of (music after speech: "Thank you."): they are not final."""
    asr = ScriptedTranscriber(words_per_call=[["first", "part"], [], ["thank", "you"], ["next"]],
                              logprob_per_call=[-0.1, -0.1, -1.2, -0.1])
    engine = make(asr, partial_every_ms=60_000)
    events = run(engine, np.concatenate([tone(1.0), silence(1.0), tone(1.0), silence(1.0), tone(1.0), silence(1.0)]))
    assert [e.text for e in events if isinstance(e, FinalSegment)] == ["first part", "next"]
    assert asr.calls[2].prefix is None
    assert asr.calls[3].prefix is None and asr.calls[3].prompt == "first part"  # context never spans dropped audio


def test_punctuation_ending_the_forced_context_is_not_taken_for_new_words():
    asr = ScriptedTranscriber(words_per_call=[["yes", "-"], [], ["right"]])
    engine = make(asr, partial_every_ms=60_000)
    events = run(engine, np.concatenate([tone(1.0), silence(1.0), tone(1.0), silence(1.0)]))
    assert [e.text for e in events if isinstance(e, FinalSegment)] == ["yes -", "right"]
    assert asr.calls[1].prefix == "yes -" and asr.calls[2].prefix is None  # nothing new: decoded alone


def test_a_made_up_phrase_after_the_context_is_dropped_and_its_audio_is_not_context_again():
    asr = ScriptedTranscriber(words_per_call=[["we", "agreed", "on", "the", "plan", "for", "friday"],
                                              ["thanks", "for", "watching"], ["thanks", "for", "watching"], ["next"]],
                              logprob_per_call=[-0.1, -2.0, -1.2, -0.1])
    engine = make(asr, partial_every_ms=60_000)
    events = run(engine, np.concatenate([tone(2.0), silence(1.0), tone(0.5), silence(1.0), tone(1.0), silence(1.0)]))
    assert [e.text for e in events if isinstance(e, FinalSegment)] == ["we agreed on the plan for friday", "next"]
    assert asr.calls[1].prefix == "we agreed on the plan for friday"
    assert asr.calls[2].prefix is None  # a second opinion alone, and it must be confident: it is not
    assert asr.calls[3].prefix is None  # the dropped phrase's audio is not decoded again as context


def test_speech_a_misheard_context_led_astray_is_decoded_alone():
    """After a misheard final, the pass with it as forced context made up a word for a whole
    sentence ("end.", dropped): the sentence decoded alone, confidently, is kept."""
    asr = ScriptedTranscriber(words_per_call=[["but", "he", "made", "it"], ["end"], ["next", "week", "we", "plan"]],
                              logprob_per_call=[-0.1, -2.4, -0.3])
    engine = make(asr, partial_every_ms=60_000)
    events = run(engine, np.concatenate([tone(2.0), silence(1.0), tone(2.0), silence(1.0)]))
    assert [e.text for e in events if isinstance(e, FinalSegment)] == ["but he made it", "next week we plan"]
    assert asr.calls[1].prefix == "but he made it" and asr.calls[2].prefix is None


@dataclass
class AnswerTranscriber:
    """Answers call by call with the given segments (times within the audio it gets). After a
    forced prefix the answer starts with it, as a segment of its own up to the first one given."""

    answers: list[list[AsrSegment]]
    calls: list[Call] = field(default_factory=list)

    def transcribe(self, audio, *, prompt=None, prefix=None, word_timestamps=False, final=True):
        self.calls.append(Call(len(audio) / SR, prompt, prefix, word_timestamps, final))
        answer = self.answers.pop(0)
        if prefix:
            forced_to = answer[0].start_s if answer else len(audio) / SR
            answer = [AsrSegment(0.0, forced_to, prefix, -0.1, 0.0, 1.2), *answer]
        return answer


def said(start_s: float, end_s: float, text: str, logprob: float = -0.1, ratio: float = 1.2) -> AsrSegment:
    return AsrSegment(start_s, end_s, text, logprob, 0.0, ratio)


# 3 s of speech, then 2 s (from 4.0 s): the second utterance spans 3.75-6.2 s with its pre- and
# post-roll, and its context pass decodes 0-6.2 s, so times in that pass are recording times.
TWO_UTTERANCES = (tone(3.0), silence(1.0), tone(2.0), silence(1.0))
FIRST = [said(0.0, 3.2, "we saw two incidents")]
ALONE = [said(0.0, 2.4, "the team added a timeout and a retry")]


def finals_of(asr, **config) -> list[str]:
    events = run(make(asr, partial_every_ms=60_000, **config), np.concatenate(TWO_UTTERANCES))
    return [e.text for e in events if isinstance(e, FinalSegment)]


@pytest.mark.parametrize(("alone", "kept"), [
    (ALONE, "the team added a timeout and a retry"),
    ([said(0.0, 2.4, "retry")], "the team"),  # decoded alone it says less: the context pass's words stay
    ([said(0.0, 2.4, "the team the team the team the team", ratio=3.0)], "the team"),  # a loop is no more
    ([*ALONE, said(2.0, 2.4, "thank you", logprob=-0.9)], "the team added a timeout and a retry"),  # strict
])
def test_a_context_pass_that_stops_before_the_utterance_ends_is_checked_alone(alone, kept):
    """Whisper closed the window on a timestamp 2 s before the utterance's end: the rest of it was
    never decoded. Decoded alone, the utterance replaces that answer if it has more sure words."""
    asr = AnswerTranscriber([FIRST, [said(3.8, 4.2, "the team")], alone])
    assert finals_of(asr) == ["we saw two incidents", kept]
    assert asr.calls[1].prefix == "we saw two incidents" and asr.calls[2].prefix is None


def test_a_made_up_segment_after_the_words_does_not_hide_that_the_pass_stopped_early():
    asr = AnswerTranscriber([FIRST, [said(3.8, 4.2, "the team"), said(4.2, 6.2, "you", logprob=-2.0)], ALONE])
    assert finals_of(asr) == ["we saw two incidents", "the team added a timeout and a retry"]


def test_a_context_pass_that_reaches_near_the_utterance_end_is_not_decoded_again():
    asr = AnswerTranscriber([FIRST, [said(3.8, 5.6, "the team added a timeout")]])  # 0.6 s before its end
    assert finals_of(asr) == ["we saw two incidents", "the team added a timeout"]
    assert len(asr.calls) == 2


def test_audio_whose_text_was_all_dropped_is_no_context_for_the_next_utterance():
    """Made up after the context, and nothing decoded alone (faster-whisper skips a window it
    deems silent): the next pass must not decode that audio as context without its text."""
    asr = AnswerTranscriber([FIRST, [said(3.8, 6.2, "end", logprob=-2.4)], [], [said(0.0, 1.0, "next")]])
    events = run(make(asr, partial_every_ms=60_000), np.concatenate([*TWO_UTTERANCES, tone(1.0), silence(1.0)]))
    assert [e.text for e in events if isinstance(e, FinalSegment)] == ["we saw two incidents", "next"]
    assert asr.calls[2].prefix is None and asr.calls[3].prefix is None


def test_an_answer_not_starting_with_the_forced_context_is_not_trusted():
    asr = ScriptedTranscriber(words_per_call=[["first", "part"], ["first", "bart", "second"], ["second"]],
                              honours_prefix=False)
    engine = make(asr, partial_every_ms=60_000)
    events = run(engine, np.concatenate([tone(1.0), silence(1.0), tone(1.0), silence(1.0)]))
    assert [e.text for e in events if isinstance(e, FinalSegment)] == ["first part", "second"]
    assert asr.calls[1].prefix == "first part" and asr.calls[2].prefix is None


def seg(text: str) -> AsrSegment:
    return AsrSegment(0.0, 1.0, text, -0.1, 0.0, 1.2)


@pytest.mark.parametrize(("answer", "prefix", "new"), [
    (["Good morning, everyone. Today we have"], "Good morning everyone.", ["Today we have"]),
    (["Good morning", "everyone - today"], "good morning, everyone", ["today"]),  # across segments
    (["Good morning everyone.", "Today we have"], "Good morning everyone.", ["Today we have"]),
    (["Good morning everyone."], "Good morning everyone.", []),  # nothing after it
    (["Good morning everyones today"], "Good morning everyone", None),  # a word straddles its end
    (["Good evening everyone today"], "Good morning everyone", None),  # not the forced text
    (["我们开始开会。今天有三个议题。"], "我们开始开会。", ["今天有三个议题。"]),  # written without spaces
    (["会議を始めます今日は"], "会議を始めます。", ["今日は"]),
    (["ประชุมเริ่มแล้ววันนี้"], "ประชุมเริ่มแล้ว", ["วันนี้"]),
    (["회의를 시작합니다다 오늘"], "회의를 시작합니", None),  # Korean is written with spaces
])
def test_the_new_text_is_what_follows_the_forced_text_letter_by_letter(answer, prefix, new):
    result = _after_prefix([seg(t) for t in answer], prefix)
    assert (None if result is None else [s.text for s in result]) == new


@pytest.mark.parametrize("dips", [False, True])
def test_long_monologue_commits_agreed_words_before_it_ends(dips):
    words = [f"w{i}" for i in range(40)]
    script = [words[: 8 + i] for i in range(30)]  # each partial pass hears a bit more
    asr = ScriptedTranscriber(words_per_call=script)
    engine = make(asr, partial_every_ms=700, long_utterance_s=5.0)
    # With dips: 0.3 s breaths between 0.6 s stretches, each shorter than the end of an utterance.
    audio = np.concatenate([np.concatenate([tone(0.6), silence(0.3)])] * 16)[: 14 * SR] if dips else tone(14.0)
    events = run(engine, audio)
    finals = [e for e in events if isinstance(e, FinalSegment)]
    assert finals, "a 14 s monologue must not wait for its end to become final"
    assert all(e.start_ms < 14_000 for e in finals)
    assert engine.backlog_s < 14.0


def test_hallucination_from_noise_is_dropped():
    asr = ScriptedTranscriber(words_per_call=[["thanks", "for", "watching"]], no_speech=0.9, avg_logprob=-1.5)
    engine = make(asr, partial_every_ms=60_000)
    events = run(engine, np.concatenate([tone(0.5), silence(1.0)]))
    assert len(asr.calls) == 1
    assert [e for e in events if isinstance(e, FinalSegment)] == []


def test_vad_scores_each_window_once_in_order():
    seen = []

    def scorer(audio):
        seen.append(audio.copy())
        return np.arange(len(audio) // WINDOW, dtype=np.float32)

    vad = StreamingVad(scorer)
    audio = np.arange(1100, dtype=np.float32)
    assert vad.push(audio[:500]) == []
    assert vad.push(audio[500:]) == [0.0, 1.0]  # 1100 samples = 2 whole windows, the rest waits
    assert len(seen) == 1 and np.array_equal(seen[0], audio[: 2 * WINDOW])  # the scorer keeps its own context


def test_settled_time_stops_at_the_first_audio_not_yet_final():
    """No final to come starts before the settled time (the session sends lines to the server
    in time order up to it): the pre-roll of speech not yet heard is not settled either."""
    engine = make(ScriptedTranscriber([["Hello"]]))
    engine.insert_audio(silence(1.0))
    before_speech = engine.settled_ms
    assert 1000 - 32 - 250 <= before_speech <= 1000 - 250  # scored silence, but for the pre-roll
    assert engine.idle
    engine.insert_audio(tone(1.0))
    assert before_speech <= engine.settled_ms <= 1000  # the utterance (with its pre-roll) is pending
    assert not engine.idle
    engine.insert_audio(silence(1.0))  # the pause closes it, but it is not transcribed yet
    assert engine.has_final_work() and engine.settled_ms <= 1000
    assert not engine.idle
    finals = []
    while engine.has_work():
        finals += [e for e in engine.poll() if isinstance(e, FinalSegment)]
    [final] = finals
    assert final.start_ms >= before_speech
    assert 3000 - 32 - 250 <= engine.settled_ms <= 3000 - 250
    assert engine.idle


def test_long_sound_without_words_settles_and_is_not_held_forever():
    """Music or steady noise keeps an utterance open, and every pass over it is dropped as made
    up: past ``max_utterance_s`` a final pass decides the audio so far, so the stream settles
    (lines go to the server in time order up to where both streams settled) and the buffer stops
    growing."""
    asr = ScriptedTranscriber(avg_logprob=-5.0)  # every answer a hallucination
    engine = make(asr)
    events = run(engine, np.concatenate([silence(1.0), tone(60.0)]))
    assert not [e for e in events if isinstance(e, FinalSegment)]
    assert engine.settled_ms >= 60_000 - 24_000
    assert len(engine._buf) <= (24 + 20 + 2) * SR  # the utterance window and the context before it


@dataclass
class GreedyHearsNothing(ScriptedTranscriber):
    """Partial (greedy) passes come out as made-up text; final passes (8 beams) hear words."""

    def transcribe(self, audio, *, prompt=None, prefix=None, word_timestamps=False, final=True):
        self.avg_logprob = -0.1 if final else -5.0
        return super().transcribe(audio, prompt=prompt, prefix=prefix, word_timestamps=word_timestamps, final=final)


def test_long_audio_whose_greedy_passes_hear_nothing_is_still_decoded_by_a_final_pass():
    """Speech over music can fail every greedy pass: the final pass still hears it, from its start."""
    engine = make(GreedyHearsNothing())
    finals = [e for e in run(engine, np.concatenate([silence(1.0), tone(60.0), silence(1.0)]))
              if isinstance(e, FinalSegment)]
    assert finals and finals[0].start_ms <= 1_000
    assert finals[-1].end_ms >= 60_000


def test_a_backlog_of_closed_utterances_is_decoded_in_one_pass():
    """Behind (nobody polled for a while), waiting utterances are merged: fewer passes to catch up."""
    asr = ScriptedTranscriber(words_per_call=[["one", "two", "three"]])
    engine = make(asr, partial_every_ms=60_000)
    for _ in range(3):  # three utterances close while the worker is busy elsewhere
        engine.insert_audio(np.concatenate([tone(1.0), silence(1.0)]))
    assert engine.backlog_s > 4.0
    events = engine.poll()
    assert [e.text for e in events if isinstance(e, FinalSegment)] == ["one two three"]
    assert len(asr.calls) == 1 and asr.calls[0].seconds > 4.5  # all three in a single pass
    assert not engine.has_final_work() and engine.backlog_s == 0.0


def test_a_backlog_longer_than_the_merge_limit_takes_several_passes():
    asr = ScriptedTranscriber()
    engine = make(asr, partial_every_ms=60_000, merge_backlog_s=4.0)
    for _ in range(3):  # each utterance spans ~1.5 s (with its pre- and post-roll), 2 s apart
        engine.insert_audio(np.concatenate([tone(1.0), silence(1.0)]))
    first = engine.poll()
    assert len(asr.calls) == 1 and 3.0 < asr.calls[0].seconds < 4.0  # the first two together
    assert engine.has_final_work()  # the third did not fit
    polls = 1
    while engine.has_final_work():
        engine.poll()
        polls += 1
    assert polls == 2 and first


@pytest.mark.parametrize("seed", range(40))
def test_whole_recording_spans_follow_faster_whispers_rule(seed, monkeypatch):
    """``_spans`` against faster-whisper's own ``get_speech_timestamps`` on the same scores:
    runs of speech, pauses and flickers, scores on both thresholds (as float32), speech from the
    first window, lengths with and without a last partial window, none at all."""
    import faster_whisper.vad as fw_vad

    from transcription.vad import _spans

    rng = np.random.default_rng(seed)
    length = int(rng.integers(0, 4000)) * WINDOW + int(rng.choice([0, 1, 300, 511]))
    windows = length // WINDOW + 1
    levels = np.array([0.0, 0.2, np.float32(0.35), 0.34, 0.4, 0.5, np.float32(0.5), 0.9], np.float32)
    probs = np.empty(windows, np.float32)
    at = 0
    while at < windows:  # stretches of one level, 1-150 windows long (150 windows: 4.8 s)
        n = int(rng.integers(1, 150))
        probs[at: at + n] = rng.choice(levels)
        at += n
    monkeypatch.setattr(fw_vad, "get_vad_model", lambda: lambda padded: probs[: len(padded) // WINDOW])
    expected = fw_vad.get_speech_timestamps(np.zeros(length, np.float32), fw_vad.VadOptions())
    assert _spans(probs, length, fw_vad.VadOptions()) == [(s["start"], s["end"]) for s in expected]
