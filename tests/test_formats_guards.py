"""Transcript export formats and hallucination guards."""

from __future__ import annotations

import json

import pytest

from transcription.formats import TranscriptLine, clock, render
from transcription.guards import collapse_repeats, is_hallucination
from transcription.types import AsrSegment

LINES = [TranscriptLine(1500, 4200.4, "Me", "Hello there."), TranscriptLine(3_725_000, 3_727_250, None, "Bye.")]


def test_clock():
    assert clock(12_999) == "00:12" and clock(3_725_000) == "1:02:05"


def test_txt_and_md():
    assert render(LINES, "txt") == "[00:01] Me: Hello there.\n[1:02:05] Bye.\n"
    assert render(LINES, "md", title="Standup").startswith("# Standup\n\n- **00:01** *Me*: Hello there.\n")


def test_srt_and_vtt_cue_times():
    srt = render(LINES, "srt")
    assert "1\n00:00:01,500 --> 00:00:04,200\nMe: Hello there.\n" in srt
    assert "2\n01:02:05,000 --> 01:02:07,250\nBye.\n" in srt
    vtt = render(LINES, "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:01.500 --> 00:00:04.200\n<v Me>Hello there.\n")


def test_json_roundtrip():
    data = json.loads(render(LINES, "json", title="T"))
    assert data["title"] == "T" and data["segments"][0] == {"start_ms": 1500, "end_ms": 4200.4, "speaker": "Me",
                                                           "text": "Hello there."}


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown format"):
        render(LINES, "docx")


def test_repetition_loops_are_cut_but_ordinary_repeats_kept():
    assert collapse_repeats("thank you thank you thank you thank you so much") == "thank you thank you so much"
    assert collapse_repeats("no no no no no") == "no no"
    assert collapse_repeats("that that is all") == "that that is all"


@pytest.mark.parametrize(("logprob", "no_speech", "ratio", "text", "dropped"), [
    (-0.3, 0.1, 1.5, "A real sentence.", False),
    (-1.2, 0.8, 1.5, "Thanks for watching!", True),   # silence that the model filled
    (-0.93, 0.49, 0.6, "Thank you.", True),  # music after speech
    (-0.53, 0.12, 1.2, "Here is the status update.", False),  # the least sure real speech measured
    (-0.3, 0.1, 3.1, "la la la la la la la la", True),  # a decoding loop compresses too well
    (-2.0, 0.1, 1.5, "mumble", True),
    (-0.2, 0.1, 1.0, "   ", True),
])
def test_hallucination_guard(logprob, no_speech, ratio, text, dropped):
    assert is_hallucination(AsrSegment(0, 1, text, logprob, no_speech, ratio)) is dropped


def test_a_share_done_shows_100_percent_only_once_it_is_all_done():
    from transcription.formats import percent

    assert [percent(x) for x in (-0.1, 0.0, 0.424, 0.995, 1.0, 1.2)] == ["0%", "0%", "42%", "99%", "100%", "100%"]
    assert [percent(n / 100) for n in range(101)] == [f"{n}%" for n in range(101)]  # 0.29 is 29%, not 28%
