"""Real audio made from scratch: families of synthesised music, encoded by ffmpeg.

Used by the tests, the demo and the benchmarks, so that none of them needs
audio from outside. Run ``python -m tests.synth DIR`` to write a demo set.
"""

from __future__ import annotations

import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 44100
CODECS = {
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    "mp3": ["-c:a", "libmp3lame", "-q:a", "4"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "4"],
}


def _note(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def pad(t: np.ndarray, key: int, tempo: float, rng: np.random.Generator) -> np.ndarray:
    """Soft sustained major-seventh chords, changing every two bars."""
    bar = 240 / tempo
    out = np.zeros_like(t)
    for i, root in enumerate([0, 5, 9, 7] * 64):
        start, end = i * 2 * bar, (i + 1) * 2 * bar
        if start >= t[-1]:
            break
        seg = (t >= start) & (t < end)
        local = t[seg] - start
        env = np.minimum(1, local / 0.8) * np.minimum(1, (end - start - local) / 0.8)
        for step in (0, 4, 7, 11):
            f = _note(48 + key + root + step)
            out[seg] += env * (np.sin(2 * np.pi * f * local) + 0.3 * np.sin(4 * np.pi * f * local))
    return out


def riff(t: np.ndarray, key: int, tempo: float, rng: np.random.Generator) -> np.ndarray:
    """Distorted sawtooth power chords in eighths over a noisy backbeat."""
    eighth = 30 / tempo
    idx = (t // eighth).astype(int)
    roots = np.array([0, 0, 3, 5, 0, 0, 7, 5])[idx % 8] + 40 + key
    phase = t * _note(0) * 2 ** ((roots - 0) / 12)
    saw = 2 * (phase % 1) - 1 + 2 * ((phase * 1.5) % 1) - 1
    env = np.exp(-3 * (t % eighth))
    guitar = np.tanh(4 * saw * env)
    beat = t % (2 * eighth * 2)
    snare = (rng.standard_normal(t.size) * np.exp(-20 * beat)) * ((idx // 4) % 2 == 1)
    kick = np.sin(2 * np.pi * 60 * beat) * np.exp(-12 * beat) * ((idx // 4) % 2 == 0)
    return guitar + 0.6 * snare + 0.9 * kick


def drums(t: np.ndarray, key: int, tempo: float, rng: np.random.Generator) -> np.ndarray:
    """A drum machine: four-on-the-floor kick, clap, offbeat hats and a bass line."""
    beat = 60 / tempo
    pos = t % beat
    idx = (t // beat).astype(int)
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * pos)) * pos) * np.exp(-8 * pos)
    noise = rng.standard_normal(t.size)
    clap = noise * np.exp(-25 * pos) * (idx % 2 == 1)
    off = (t + beat / 2) % beat
    hats = np.diff(noise, prepend=0) * np.exp(-60 * off) * 0.5
    bass_f = _note(36 + key + np.array([0, 0, 3, 5])[(idx // 4) % 4])
    bass = np.sign(np.sin(2 * np.pi * bass_f * t)) * np.exp(-4 * off) * 0.3
    return kick + 0.5 * clap + hats + bass


def pluck(t: np.ndarray, key: int, tempo: float, rng: np.random.Generator) -> np.ndarray:
    """A solo plucked-string melody (Karplus-Strong) on a pentatonic scale."""
    out = np.zeros_like(t)
    note_len = 60 / tempo
    scale = [0, 2, 4, 7, 9, 12, 14, 16]
    for start in np.arange(0, t[-1], note_len):
        f = _note(60 + key + scale[rng.integers(len(scale))])
        period = max(2, int(RATE / f))
        n = min(int(note_len * RATE * 2), t.size - int(start * RATE))
        if n <= period:
            break
        buf = rng.uniform(-1, 1, period)
        reps = -(-n // period)
        decay = 0.996 ** np.arange(reps)
        tone = (np.tile(buf, reps) * np.repeat(decay, period))[:n]
        tone = np.convolve(tone, [0.5, 0.5], mode="same")
        begin = int(start * RATE)
        out[begin : begin + n] += tone
    return out


def noise(t: np.ndarray, key: int, tempo: float, rng: np.random.Generator) -> np.ndarray:
    """Brown-ish noise: no music at all."""
    return np.cumsum(rng.standard_normal(t.size)) % 2 - 1


def tone(t: np.ndarray, key: int, tempo: float, rng: np.random.Generator) -> np.ndarray:
    """A plain sine."""
    return np.sin(2 * np.pi * _note(57 + key) * t)


FAMILIES = {"pad": pad, "riff": riff, "drums": drums, "pluck": pluck, "noise": noise, "tone": tone}


@dataclass(frozen=True)
class Track:
    family: str
    seconds: float
    key: int = 0
    tempo: float = 120
    loudness: float = 0.3  # RMS of the result
    seed: int = 0
    stereo: bool = True

    def render(self) -> np.ndarray:
        """(samples, channels) floats in -1..1."""
        rng = np.random.default_rng(self.seed)
        t = np.arange(int(self.seconds * RATE)) / RATE
        mono = FAMILIES[self.family](t, self.key, self.tempo, rng)
        mono = mono / max(np.sqrt(np.mean(mono**2)), 1e-9) * self.loudness
        if not self.stereo:
            return np.clip(mono, -1, 1)[:, None]
        wide = np.stack([mono, np.roll(mono, 200) * 0.8 + mono * 0.2], axis=1)
        return np.clip(wide, -1, 1)


def write(track: Track, path: Path) -> Path:
    """Render ``track`` and encode it to ``path`` (format from the suffix)."""
    audio = track.render()
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = path.with_name(path.stem + ".tmp.wav")
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(audio.shape[1])
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((audio * 32767).astype("<i2").tobytes())
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav),
         *CODECS[path.suffix[1:]], str(path)],
        check=True,
    )  # fmt: skip
    wav.unlink()
    return path


DEMO = [
    ("Velvet Pads", "Slow Bloom", Track("pad", 40, key=2, tempo=70, seed=1), "flac"),
    ("Velvet Pads", "Evening Glass", Track("pad", 35, key=7, tempo=60, seed=2), "ogg"),
    ("Iron Static", "Overdrive", Track("riff", 35, key=0, tempo=150, seed=3), "mp3"),
    ("Iron Static", "Feedback Loop", Track("riff", 30, key=5, tempo=132, seed=4), "ogg"),
    ("Unit 808", "Floor Filler", Track("drums", 40, key=3, tempo=124, seed=5), "mp3"),
    ("Unit 808", "Night Shift", Track("drums", 30, key=10, tempo=128, seed=6), "flac"),
    ("Nylon Hands", "Pentatonic Walk", Track("pluck", 35, key=4, tempo=96, seed=7), "flac"),
    ("Nylon Hands", "Dew", Track("pluck", 30, key=9, tempo=80, seed=8), "mp3"),
]


def demo_library(folder: Path) -> list[Path]:
    """Write the demo albums, tagged by ffmpeg, as a folder to import."""
    paths = []
    for number, (artist, title, track, fmt) in enumerate(DEMO, 1):
        path = write(track, folder / artist / f"{number:02d} {title}.{fmt}")
        tagged = path.with_name("tagged-" + path.name)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(path), "-c", "copy",
             "-metadata", f"artist={artist}", "-metadata", f"title={title}",
             "-metadata", f"album={artist} Demo", "-metadata", f"track={number}", str(tagged)],
            check=True,
        )  # fmt: skip
        tagged.replace(path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in demo_library(Path(sys.argv[1])):
        print(p)
