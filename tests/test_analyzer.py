"""The analyzer alone, without beets: real files in, real model, results out."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from beetsplug.musicnn import inference
from beetsplug.musicnn.analyzer import (
    Analyzer,
    Failure,
    Job,
    Outcome,
    Result,
    Unchanged,
    level_db,
)
from beetsplug.musicnn.decode import CHUNK_SECONDS, FINGERPRINT_SECONDS, Decoding, Fingerprint
from beetsplug.musicnn.inference import shared_predictor
from beetsplug.musicnn.provision import Graph, ModelInfo
from tests.synth import CODECS


@pytest.fixture(scope="module")
def analyzer(msd: tuple[ModelInfo, Graph]) -> Analyzer:
    info, graph = msd
    return Analyzer(lambda: shared_predictor(graph.path, info), threads=2)


def _run(analyzer: Analyzer, paths: list[Path], **job: Fingerprint) -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {}
    jobs = [Job(i, os.fsencode(p), job.get("known")) for i, p in enumerate(paths)]
    analyzer.run(jobs, lambda o: outcomes.__setitem__(o.key, o))
    return outcomes


def _essentia_means(path: Path, graph: Path) -> tuple[np.ndarray, int]:
    import essentia.standard as es

    audio = es.MonoLoader(filename=str(path), sampleRate=16000)()
    predict = es.TensorflowPredictMusiCNN(
        graphFilename=str(graph), output="model/Sigmoid", patchHopSize=187
    )
    activations = predict(audio)
    return activations.mean(0), len(activations)


def test_agrees_with_essentia(
    analyzer: Analyzer, audio: dict[str, Path], msd: tuple[ModelInfo, Graph]
) -> None:
    """Same files, same hop: every tag mean within 0.0017 of essentia's (twice the
    largest difference measured, 0.00084 on "pluck"), same top tag."""
    info, graph = msd
    names = ["pad", "riff", "drums", "pluck", "noise"]  # "tone" is too short for essentia
    outcomes = _run(analyzer, [audio[n] for n in names])
    tops = set()
    for i, name in enumerate(names):
        result = outcomes[i]
        assert isinstance(result, Result), result
        reference, patches = _essentia_means(audio[name], graph.path)
        assert result.patches == patches
        assert np.abs(result.tags - reference).max() < 0.0017, name
        assert result.tags.argmax() == reference.argmax(), name
        tops.add(info.classes[result.tags.argmax()])
    assert len(tops) >= 2  # the files really differ in character


def _plain_pcm(command: str, path: Path) -> np.ndarray:
    """ffmpeg's output with nothing but the conversion asked for."""
    return np.frombuffer(
        subprocess.run(
            [command, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
             "-ac", "1", "-rematrix_maxval", "1.0", "-ar", "16000", "-f", "f32le", "-"],
            capture_output=True, check=True,
        ).stdout,
        np.float32,
    )  # fmt: skip


def _chained(audio: dict[str, Path], folder: Path) -> list[Path]:
    """Files whose rate and channels change midway (chained streams): ffmpeg
    rebuilds its filters there, and audio buffered in them would be lost."""
    files = []
    for name, fmt in (("riff", "mp3"), ("drums", "ogg")):
        other = folder / f"other.{fmt}"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(audio["pad"]), "-t", "3",
             "-ar", "22050", "-ac", "1", *CODECS[fmt], str(other)],
            check=True,
        )  # fmt: skip
        files.append(folder / f"chained.{fmt}")
        files[-1].write_bytes(audio[name].read_bytes() + other.read_bytes() * 2)
    return files


@pytest.mark.parametrize("ffmpeg", ["ffmpeg", "bundled"])
def test_decoder_speed_options_change_no_sample(
    ffmpeg: str, audio: dict[str, Path], tmp_path: Path
) -> None:
    command = imageio_ffmpeg.get_ffmpeg_exe() if ffmpeg == "bundled" else ffmpeg
    for path in [*audio.values(), *_chained(audio, tmp_path)]:
        with Decoding(os.fsencode(path), (command,)) as decoding:
            ours = np.concatenate([chunk.copy() for chunk in decoding.chunks()])
        assert np.array_equal(ours, _plain_pcm(command, path)), path.name


def test_fingerprint_and_level_keep_their_definitions(
    analyzer: Analyzer, audio: dict[str, Path]
) -> None:
    """Stored analyses hold both, so they must come out bit for bit as before: the
    sha1 of the first 30 s as int16, and the RMS of energies summed per 8 s chunk."""
    paths = list(audio.values())
    outcomes = _run(analyzer, paths)
    chunk = CHUNK_SECONDS * 16000
    for i, path in enumerate(paths):
        result, pcm = outcomes[i], _plain_pcm("ffmpeg", path)
        assert isinstance(result, Result)
        head = np.round(pcm[: FINGERPRINT_SECONDS * 16000] * 32767).astype("<i2")
        assert result.fingerprint.digest == hashlib.sha1(head.tobytes()).hexdigest()[:20]
        energy = sum(float(np.dot(c, c)) for c in np.split(pcm, range(chunk, len(pcm), chunk)))
        assert result.level == level_db(energy, len(pcm)), path.name


def test_thread_count_does_not_change_results(
    msd: tuple[ModelInfo, Graph], audio: dict[str, Path]
) -> None:
    info, graph = msd
    paths = list(audio.values())
    shared_predictor(graph.path, info)
    loads = inference.loads
    one = _run(Analyzer(lambda: shared_predictor(graph.path, info), threads=1), paths)
    four = _run(Analyzer(lambda: shared_predictor(graph.path, info), threads=4), paths)
    assert inference.loads == loads  # one model per process, whatever the threads
    for key, a in one.items():
        b = four[key]
        assert isinstance(a, Result) and isinstance(b, Result)
        np.testing.assert_allclose(a.tags, b.tags, atol=1e-5)
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-4)
        assert a.fingerprint == b.fingerprint


def test_short_track_is_repeat_padded(analyzer: Analyzer, audio: dict[str, Path]) -> None:
    (result,) = _run(analyzer, [audio["tone"]]).values()
    assert isinstance(result, Result)
    assert result.patches == 1
    assert 2 < result.seconds < 3
    assert np.isfinite(result.tags).all() and np.isfinite(result.embedding).all()
    assert result.embedding.shape == (200,)


def test_hop_gives_overlapping_patches(
    msd: tuple[ModelInfo, Graph], audio: dict[str, Path]
) -> None:
    info, graph = msd
    overlapping = Analyzer(lambda: shared_predictor(graph.path, info), threads=1, patch_hop=93)
    plain = Analyzer(lambda: shared_predictor(graph.path, info), threads=1)
    a = overlapping.analyze(Job(0, os.fsencode(audio["pad"])))
    b = plain.analyze(Job(0, os.fsencode(audio["pad"])))
    assert isinstance(a, Result) and isinstance(b, Result)
    assert a.patches == 2 * b.patches - 1 or a.patches == 2 * b.patches


def test_bad_files_fail_cleanly(analyzer: Analyzer, audio: dict[str, Path], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(os.urandom(20000))
    empty = tmp_path / "empty.ogg"
    empty.touch()
    paths = [tmp_path / "missing.flac", garbage, empty, audio["pad"]]
    outcomes = _run(analyzer, paths)
    assert outcomes[0] == Failure(0, os.fsencode(paths[0]), "file not found")
    for key in (1, 2):
        assert isinstance(outcomes[key], Failure) and outcomes[key].error
    assert isinstance(outcomes[3], Result)  # the good file still got analyzed


def test_known_audio_is_recognised_without_the_model(
    msd: tuple[ModelInfo, Graph], audio: dict[str, Path]
) -> None:
    info, graph = msd
    first = Analyzer(lambda: shared_predictor(graph.path, info), threads=1)
    result = first.analyze(Job(0, os.fsencode(audio["drums"])))
    assert isinstance(result, Result)

    def no_model() -> inference.Model:
        raise AssertionError("the model should not be needed")

    again = Analyzer(no_model, threads=1).analyze(
        Job(0, os.fsencode(audio["drums"]), result.fingerprint)
    )
    assert again == Unchanged(0, os.fsencode(audio["drums"]), result.fingerprint)

    other = Analyzer(lambda: shared_predictor(graph.path, info), threads=1).analyze(
        Job(0, os.fsencode(audio["riff"]), result.fingerprint)
    )
    assert isinstance(other, Result)  # different audio: analyzed
