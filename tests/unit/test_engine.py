"""How the engine is chosen: CPU kind, auto backend and precision, the sweep's batch sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from beetsplug.musicnn import engine
from beetsplug.musicnn.engine import SWEEP, choose, cpu_kind
from beetsplug.musicnn.errors import ConfigError


@pytest.mark.parametrize(
    ("flags", "kind"),
    [
        ("fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8", "amx"),
        ("fpu avx2 avx512f avx512_bf16 avx512_vnni", "avx512_bf16"),
        ("fpu avx avx2 fma", "other"),
    ],
)
def test_cpu_kind_from_its_flags(tmp_path: Path, flags: str, kind: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\n")
    assert cpu_kind.__wrapped__(cpuinfo) == kind
    assert cpu_kind.__wrapped__(tmp_path / "missing") == "other"


@pytest.fixture
def openvino_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "openvino_missing", lambda: None)


@pytest.mark.usefixtures("openvino_present")
def test_auto_is_openvino_bf16_where_the_cpu_has_bf16() -> None:
    for kind in ("amx", "avx512_bf16"):
        chosen = choose("auto", "auto", None, print, kind)
        assert (chosen.backend, chosen.precision) == ("openvino", "bf16")
        assert (chosen.structure, chosen.batch_size) == SWEEP[(kind, "openvino", "bf16")]
    plain = choose("auto", "auto", None, print, "other")
    assert (plain.backend, plain.precision) == ("openvino", "f32")


@pytest.mark.usefixtures("openvino_present")
def test_explicit_settings_win() -> None:
    chosen = choose("openvino", "f32", 3, print, "amx")
    assert (chosen.precision, chosen.batch_size) == ("f32", 3)
    tf = choose("tensorflow", "auto", None, print, "amx")
    assert (tf.backend, tf.precision, tf.structure, tf.batch_size) == (
        "tensorflow",
        "f32",
        "band",
        1,
    )
    with pytest.raises(ConfigError, match=r"musicnn\.precision: bf16 runs on the openvino backend"):
        choose("tensorflow", "bf16", None, print, "amx")


@pytest.mark.parametrize("backend", ["auto", "openvino"])
def test_a_broken_openvino_falls_back_to_tensorflow_with_one_line(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setattr(engine, "openvino_missing", lambda: "OSError: libopenvino.so: bad ELF")
    said: list[str] = []
    chosen = choose(backend, "auto", None, said.append, "amx")
    assert (chosen.backend, chosen.precision) == ("tensorflow", "f32")
    assert said == [
        "OpenVINO cannot run (OSError: libopenvino.so: bad ELF): using TensorFlow instead"
    ]
