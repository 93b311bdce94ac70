"""Synthetic speech with known text for the live transcription benchmark (espeak-ng voices).

    python benchmarks/make_speech.py OUTDIR [--variants] [--licences]

writes 16 kHz mono 16-bit WAVs, each with its reference text (what was said, in time order):
- ``paragraph.wav`` / ``.txt``: one voice reading a meeting opening, about a minute.
- ``meeting.wav`` / ``.txt``: two voices taking turns on one track.
- ``meeting_gaps.wav`` / ``.txt``: the same meeting with 8 s and 12 s pauses, a 15 s silent tail and
  a faint noise floor (-55 dBFS): silence and noise must yield no text.
- ``monologue.wav`` / ``.txt``: another voice reading a status update, about 50 s.
- ``call_mic.wav`` + ``call_system.wav`` / ``call.txt``: a call as the recorder captures it with
  headphones: the user's voice on the mic track, the other person's on the system track, silence
  on the other track meanwhile.

``--variants`` also writes ``variants/``: the four texts read by three other voices at random rates
(150-185 words per minute) and pauses (12 files, about 11 minutes): enough words that a setting's
effect on WER is not one misheard word (``benchmarks/replay_wer.py``); and ``variants_joined.wav``
/ ``.txt``: those 12 files one after another, 2 s apart, for what only shows over a long stretch
(a pass that goes wrong after many passes with context).

``--licences`` also writes ``licences.wav`` / ``.txt``: about 28 minutes (4,400 words) of text
that does not repeat, the plain sentences of the GPL-3, LGPL-2.1, MPL-2.0 and Apache-2.0 licences
in Debian's ``/usr/share/common-licenses``, four voices taking turns every four sentences: a long
stretch where a long prompt cannot lean on text said before.

The paragraph and meeting texts, voices and pacing are those the issue's streaming baseline was
measured on. Needs espeak-ng (Debian package ``espeak-ng``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 16_000

PARAGRAPH = (
    "Good morning everyone, and thank you for joining the weekly planning meeting. "
    "Today we have three topics on the agenda. "
    "First, we will review the progress on the mobile application, which is now in the final testing phase. "
    "The design team finished the new onboarding screens last week, and the early feedback from customers "
    "has been very positive. "
    "Second, we need to discuss the budget for the next quarter. "
    "Marketing has asked for additional funding to support the product launch, and finance would like a "
    "clear plan before approving any new spending. "
    "Third, we should agree on a schedule for the customer workshops that are planned for the spring. "
    "Please remember to update your tasks in the tracker before Friday, so that we can prepare an accurate "
    "report for the leadership team. "
    "If anything is blocking your work, raise it now or send me a message after the call. "
    "Let's start with the mobile application. "
    "Sarah, could you give us a short update on the testing results?"
)

MEETING = [
    ("en+m3", "Thanks for joining, I wanted to talk about the release plan for the new dashboard."),
    ("en+f3", "Sure, I reviewed the latest build this morning and most of the features look stable."),
    ("en+m3", "Great, what about the export function that failed during the demo last week?"),
    ("en+f3", "We found the problem in the file conversion code and the fix is already merged."),
    ("en+m3", "Good, then we need someone to test it with the large customer data sets."),
    ("en+f3", "I can ask Daniel to run those tests tomorrow and share the results by the evening."),
    ("en+m3", "Perfect, let's also check whether the documentation has been updated."),
    ("en+f3", "The documentation is mostly done, but the screenshots still show the old design."),
    ("en+m3", "Please create a task for that so we do not forget it before the launch."),
    ("en+f3", "Will do, and I will also schedule a short review with the support team."),
    ("en+m3", "Thank you, that covers everything on my list for today."),
    ("en+f3", "Same here, have a good afternoon everyone."),
]

MONOLOGUE = [
    "Here is the status update for the payments project.",
    "The new checkout page went live on Tuesday for ten percent of our users.",
    "Conversion is up slightly, but it is too early to draw firm conclusions.",
    "We saw two incidents this week, both caused by a slow response from the card provider.",
    "The team added a timeout and a retry, and neither incident has happened again since then.",
    "Next week we plan to raise the rollout to half of all users if the numbers hold.",
    "We also need a decision on the refund flow, because legal asked for changes to the wording.",
    "I will share a short document with the options before our meeting on Thursday.",
    "Finally, please welcome Maria, who joins the team as a backend engineer on Monday.",
]

CALL = [  # (track, sentence); "mic" is the user, "system" the other side of the call
    ("system", "Hi, can you hear me well, or should I switch to my other microphone?"),
    ("mic", "I can hear you fine, thanks for making time today."),
    ("system", "No problem, I wanted to go through the hiring plan for the summer."),
    ("mic", "Sounds good, how many interns are we planning to bring in this year?"),
    ("system", "We have budget for four, two in engineering and two in design."),
    ("mic", "That works, but we need mentors for each of them before they start."),
    ("system", "Agreed, I will ask the team leads to volunteer by the end of the month."),
    ("mic", "Great, and can you also send me the draft of the job description?"),
    ("system", "Sure, I will send it this afternoon together with the interview schedule."),
    ("mic", "Perfect, then let's meet again next Wednesday to make the final decision."),
]


class Speaker:
    def __init__(self, tmp: Path, seed: int) -> None:
        self.tmp = tmp
        self.rng = np.random.default_rng(seed)

    def say(self, text: str, voice: str, words_per_minute: int) -> np.ndarray:
        wav = self.tmp / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text], check=True)
        audio, rate = sf.read(wav, dtype="float32")
        return np.asarray(soxr.resample(audio, rate, RATE, quality="HQ"), np.float32)

    def pause(self, low: float, high: float | None = None) -> np.ndarray:
        seconds = low if high is None else self.rng.uniform(low, high)
        return np.zeros(int(seconds * RATE), np.float32)


def write(out: Path, name: str, audio: np.ndarray, text: str | None, noise_dbfs: float | None = None) -> None:
    audio = audio * 0.8
    if noise_dbfs is not None:
        audio = audio + np.random.default_rng(0).standard_normal(len(audio)) * 10 ** (noise_dbfs / 20)
    sf.write(out / f"{name}.wav", np.clip(audio, -1, 1), RATE, subtype="PCM_16")
    if text is not None:
        (out / f"{name}.txt").write_text(text + "\n")


def turns(speaker: Speaker, parts: list[tuple[str, str]], gaps: dict[int, float] | None = None) -> np.ndarray:
    """Sentences one after another (0.35 s apart unless ``gaps`` says otherwise after sentence i)."""
    chunks = []
    for i, (voice, text) in enumerate(parts):
        chunks += [speaker.say(text, voice, 160), speaker.pause((gaps or {}).get(i, 0.35))]
    return np.concatenate(chunks)


def variants(speaker: Speaker, out: Path) -> None:
    out.mkdir(exist_ok=True)
    texts = {"para": [s.strip() for s in re.findall(r"[^.?!]+[.?!]", PARAGRAPH)],
             "meet": [text for _, text in MEETING], "mono": MONOLOGUE, "call": [text for _, text in CALL]}
    files = []
    for voice in ["en+f3", "en-us+m1", "en-gb+m4"]:
        for name, sentences in texts.items():
            parts = [speaker.pause(0.5)]
            for sentence in sentences:
                parts += [speaker.say(sentence, voice, int(speaker.rng.integers(150, 185))), speaker.pause(0.25, 1.0)]
            stem = f"{name}_{voice.replace('+', '_')}"
            write(out, stem, np.concatenate(parts), " ".join(sentences))
            files.append(out / f"{stem}.wav")
    files.sort()  # the order the joined file has always had (by name)
    gap = np.zeros(2 * RATE, np.float32)
    joined = np.concatenate([x for f in files for x in (sf.read(f, dtype="float32")[0], gap)])
    sf.write(out.parent / "variants_joined.wav", joined, RATE, subtype="PCM_16")
    (out.parent / "variants_joined.txt").write_text(" ".join(f.with_suffix(".txt").read_text().strip()
                                                             for f in files) + "\n")


LICENCES = (("GPL-3", "Preamble"), ("LGPL-2.1", "Preamble"), ("MPL-2.0", "1. Definitions"), ("Apache-2.0", "TERMS"))


def licences(speaker: Speaker, out: Path, words: int = 4800) -> None:
    """Sentences of 4-40 words without digits, quotes, brackets or slashes (which espeak-ng reads
    differently from how a transcript writes them), each once, up to ``words``."""
    plain: list[str] = []
    for name, start in LICENCES:
        text = (Path("/usr/share/common-licenses") / name).read_text()
        for sentence in re.split(r"(?<=[.;:])\s+", re.sub(r"\s+", " ", text[text.index(start):])):
            sentence = sentence.strip()
            if 4 <= len(sentence.split()) <= 40 and not re.search(r"[0-9\"<>()/*]", sentence) and sentence not in plain:
                plain.append(sentence)
    said: list[str] = []
    for sentence in plain:
        if sum(len(s.split()) for s in said) >= words:
            break
        said.append(sentence)
    voices = ("en+m3", "en+f3", "en-us+m1", "en-gb+m4")
    chunks = [x for i, s in enumerate(said) for x in (speaker.say(s, voices[i // 4 % 4], 165), speaker.pause(0.3, 0.8))]
    write(out, "licences", np.concatenate(chunks), " ".join(said))


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        if "--variants" in sys.argv[2:]:
            variants(Speaker(Path(tmpdir), seed=11), out / "variants")
        if "--licences" in sys.argv[2:]:
            licences(Speaker(Path(tmpdir), seed=5), out)
        speaker = Speaker(Path(tmpdir), seed=7)
        sentences = [s.strip() for s in re.findall(r"[^.?!]+[.?!]", PARAGRAPH)]
        write(out, "paragraph", turns(speaker, [("en+m3", s) for s in sentences]), PARAGRAPH.strip())
        meeting_text = " ".join(text for _, text in MEETING)
        write(out, "meeting", turns(speaker, MEETING), meeting_text)
        gappy = np.concatenate([turns(speaker, MEETING, gaps={2: 8.0, 6: 12.0}), speaker.pause(15.0)])
        write(out, "meeting_gaps", gappy, meeting_text, noise_dbfs=-55)

        parts = [speaker.pause(0.5)]
        for sentence in MONOLOGUE:
            parts += [speaker.say(sentence, "en-us+m3", 165), speaker.pause(0.3, 0.9)]
        write(out, "monologue", np.concatenate(parts), " ".join(MONOLOGUE))

        voices = {"mic": "en-us+m3", "system": "en-us+f3"}
        tracks: dict[str, list[np.ndarray]] = {"mic": [speaker.pause(0.5)], "system": [speaker.pause(0.5)]}
        for who, sentence in CALL:
            pause = speaker.pause(0.4, 1.0)
            said = speaker.say(sentence, voices[who], 165)
            for track, chunks in tracks.items():
                chunks += [said if track == who else np.zeros_like(said), pause]
        for track, chunks in tracks.items():
            write(out, f"call_{track}", np.concatenate(chunks), None)
        (out / "call.txt").write_text(" ".join(s for _, s in CALL) + "\n")
    print({str(p.relative_to(out)): round(sf.info(p).duration, 1) for p in sorted(out.rglob("*.wav"))})


if __name__ == "__main__":
    main()
