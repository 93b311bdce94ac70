"""Synthetic meetings with known text for the live transcription benchmark (espeak-ng voices).

    python benchmarks/make_meeting.py OUTDIR

writes, 16 kHz mono 16-bit WAV plus the reference text (what was said, in time order):
- ``monologue.wav`` / ``monologue.txt``: one voice reading a status update, about a minute.
- ``meeting_mic.wav`` + ``meeting_system.wav`` / ``meeting.txt``: two voices taking turns, the
  user's on the mic track and the other person's on the system track (silence on the other
  track meanwhile), as the recorder captures a call with headphones.

Needs espeak-ng (Debian package ``espeak-ng``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 16_000
rng = np.random.default_rng(7)

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

MEETING = [  # (speaker, sentence); "mic" is the user, "system" the other side of the call
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


def speak(text: str, voice: str, tmp: Path) -> np.ndarray:
    wav = tmp / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(wav), text], check=True)
    audio, rate = sf.read(wav, dtype="float32")
    return np.asarray(soxr.resample(audio, rate, RATE, quality="HQ"), np.float32)


def gap(low: float, high: float) -> np.ndarray:
    return np.zeros(int(rng.uniform(low, high) * RATE), np.float32)


def write(path: Path, audio: np.ndarray) -> None:
    sf.write(path, np.clip(audio * 0.8, -1, 1), RATE, subtype="PCM_16")


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        parts = [gap(0.5, 0.5)]
        for sentence in MONOLOGUE:
            parts += [speak(sentence, "en-us+m3", tmp), gap(0.3, 0.9)]
        write(out / "monologue.wav", np.concatenate(parts))
        (out / "monologue.txt").write_text(" ".join(MONOLOGUE) + "\n")

        voices = {"mic": "en-us+m3", "system": "en-us+f3"}
        tracks: dict[str, list[np.ndarray]] = {"mic": [gap(0.5, 0.5)], "system": [gap(0.5, 0.5)]}
        for speaker, sentence in MEETING:
            pause = gap(0.4, 1.0)
            said = speak(sentence, voices[speaker], tmp)
            for track, parts_of in tracks.items():
                parts_of += [said if track == speaker else np.zeros_like(said), pause]
        for track, parts_of in tracks.items():
            write(out / f"meeting_{track}.wav", np.concatenate(parts_of))
        (out / "meeting.txt").write_text(" ".join(s for _, s in MEETING) + "\n")
    seconds = {p.name: round(sf.info(p).duration, 1) for p in sorted(out.glob("*.wav"))}
    print(seconds)


if __name__ == "__main__":
    main()
