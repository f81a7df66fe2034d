"""How the engine is chosen: CPU kind, GPU, auto backend and precision, the sweep's batch sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from beetsplug.musicnn import engine
from beetsplug.musicnn.engine import DEFAULTS, SWEEP, choose, cpu_kind
from beetsplug.musicnn.errors import ConfigError
from beetsplug.musicnn.freeze import WEIGHTS


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


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's GPU, if it has one, must not change what these tests choose."""
    monkeypatch.setattr(engine, "GPU_NODES", ())


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
    with pytest.raises(ConfigError, match=r"musicnn\.precision: bf16 runs on the openvino and"):
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


def _torch_sees(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gpus: int | None) -> None:
    """A machine with a GPU node, where torch is missing (None) or sees ``gpus`` GPUs."""
    node = tmp_path / "nvidiactl"
    node.touch()
    monkeypatch.setattr(engine, "GPU_NODES", (node,))
    monkeypatch.setattr(engine, "openvino_missing", lambda: None)
    monkeypatch.setattr(
        engine, "torch_missing", lambda: "torch is not installed" if gpus is None else None
    )
    monkeypatch.setattr(engine, "cuda_count", lambda: gpus or 0)


def test_auto_takes_torch_bf16_on_a_gpu_torch_sees(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _torch_sees(monkeypatch, tmp_path, 1)
    chosen = choose("auto", "auto", None, print, "amx")
    assert (chosen.backend, chosen.device, chosen.precision) == ("torch", "cuda:0", "bf16")
    assert (chosen.structure, chosen.batch_size) == SWEEP[("cuda", "torch", "bf16")]
    assert chosen.structure == WEIGHTS
    assert choose("auto", "f32", 64, print, "amx").batch_size == 64
    assert choose("auto", "auto", None, print, "amx", device="cpu").backend == "openvino"


@pytest.mark.parametrize("gpus", [None, 0])
def test_auto_without_torch_or_a_gpu_is_the_cpu_engine_silently(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gpus: int | None
) -> None:
    _torch_sees(monkeypatch, tmp_path, gpus)
    said: list[str] = []
    chosen = choose("auto", "auto", None, said.append, "amx")
    assert (chosen.backend, chosen.device, chosen.precision) == ("openvino", "cpu", "bf16")
    assert said == []


@pytest.mark.usefixtures("openvino_present")
def test_without_a_gpu_node_auto_never_imports_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    def imported() -> None:
        raise AssertionError("torch imported")

    monkeypatch.setattr(engine, "torch_missing", imported)
    assert choose("auto", "auto", None, print, "amx").backend == "openvino"


def test_torch_missing_is_found_without_importing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.importlib.util, "find_spec", lambda name: None)
    assert engine.torch_missing() == "torch is not installed"


@pytest.mark.parametrize(
    ("backend", "device", "message"),
    [
        (
            "torch",
            "auto",
            "musicnn.backend: needs torch, which cannot run (torch is not installed)",
        ),
        ("auto", "cuda", "musicnn.device: needs torch, which cannot run (torch is not installed)"),
        ("torch", "cuda:0", "musicnn.device: needs torch"),
    ],
)
def test_asking_for_torch_without_it_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str, device: str, message: str
) -> None:
    _torch_sees(monkeypatch, tmp_path, None)
    with pytest.raises(ConfigError) as raised:
        choose(backend, "auto", None, print, "amx", device=device)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    assert "pip install torch" in str(raised.value)


def test_asking_for_a_gpu_torch_does_not_see_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _torch_sees(monkeypatch, tmp_path, 0)
    with pytest.raises(ConfigError, match=r"^musicnn\.device: cuda is not usable: torch sees 0"):
        choose("torch", "auto", None, print, "amx", device="cuda")
    _torch_sees(monkeypatch, tmp_path, 2)
    assert choose("auto", "auto", None, print, "amx", device="cuda:1").device == "cuda:1"
    with pytest.raises(ConfigError, match=r"^musicnn\.device: cuda:2 is not usable: torch sees 2"):
        choose("torch", "auto", None, print, "amx", device="cuda:2")
    with pytest.raises(ConfigError, match=r"^musicnn\.device: cuda runs backend torch only"):
        choose("openvino", "auto", None, print, "amx", device="cuda")


def test_torch_on_the_cpu_is_f32_and_fp16_needs_a_gpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _torch_sees(monkeypatch, tmp_path, 0)
    chosen = choose("torch", "auto", None, print, "amx")
    assert (chosen.device, chosen.precision) == ("cpu", "f32")
    assert (chosen.structure, chosen.batch_size) == DEFAULTS["torch"]
    assert choose("torch", "bf16", None, print, "amx").precision == "bf16"
    for backend in ("torch", "openvino", "tensorflow"):
        with pytest.raises(ConfigError, match=r"^musicnn\.precision: fp16 runs on backend torch"):
            choose(backend, "fp16", None, print, "amx")
    _torch_sees(monkeypatch, tmp_path, 1)
    assert choose("torch", "fp16", None, print, "amx").precision == "fp16"
