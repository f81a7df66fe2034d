"""Every option: its default, its check, and the frozen settings a run takes.

An option is one field of ``Settings`` (its config key, default and check)
plus one line in docs/index.md: ``DEFAULTS`` for beets' ``config.add``,
the validation and the value everything downstream reads all come from
that field. Settings are loaded once, when a musicnn command or an
analyzing import starts; a bad value is a ``ConfigError`` naming the
option and what it allows. Cheap to import: no numpy.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError, MoodConfigError
from .provision import MODELS, ModelInfo

BACKENDS = ("auto", "openvino", "tensorflow", "essentia", "torch")
PRECISIONS = ("auto", "f32", "bf16", "fp16")
DEFAULT_THRESHOLD = 0.75

# Default moods per model. MTT has no happy or sad tags: it gets the two
# moods its tags can carry, so `model: mtt` works with nothing else set.
MODEL_MOODS: dict[str, dict[str, dict[str, Any]]] = {
    "msd": {
        "happy": {"tags": ["happy"]},
        "sad": {"tags": ["sad"]},
        "relaxed": {"tags": ["chill", "chillout", "Mellow", "easy listening"]},
        "party": {"tags": ["party", "dance"]},
    },
    "mtt": {
        "relaxed": {"tags": ["soft", "quiet", "slow"]},
        "party": {"tags": ["dance", "fast", "beats"]},
    },
}


@dataclass(frozen=True)
class Mood:
    """A mood label, the model tags whose mean activation scores it, and its threshold."""

    name: str
    tags: tuple[str, ...]
    threshold: float

    @property
    def field(self) -> str:
        return f"musicnn_{self.name}"


class _Source:
    """The option values being read: the config view, the CLI overrides, what is parsed."""

    def __init__(self, view: Any, overrides: Mapping[str, Any], library: Path, config_dir: Path):
        self.view = view
        self.overrides = overrides
        self.library = library
        self.config_dir = config_dir
        self.parsed: dict[str, Any] = {}

    def raw(self, key: str) -> Any:
        """The value as configured; a mapping merged over every config source."""
        if self.overrides.get(key) is not None:
            return self.overrides[key]
        view = self.view[key]
        if not view.exists():
            return None
        value = view.get()
        return view.flatten() if isinstance(value, dict) else value

    def filename(self, key: str) -> Path:
        """A path option as beets reads paths (relative to the config directory)."""
        return Path(self.view[key].as_filename())


Check = Callable[[str, Any, "_Source | None"], Any]


def option(key: str, default: Any, check: Check) -> Any:
    """A ``Settings`` field read from ``musicnn.<key>`` (default ``default``) by ``check``."""
    return field(metadata={"key": key, "default": default, "check": check})


def _bad(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"musicnn.{key}: {value!r} is not allowed: use {allowed}")


def number(low: float = -math.inf, high: float = math.inf, whole: bool = False) -> Check:
    """A number within [low, high]; ``whole`` for integers."""
    kind = "a whole number" if whole else "a number"
    bounds = [
        f"at least {low:g}" if low > -math.inf else "",
        f"at most {high:g}" if high < math.inf else "",
    ]
    allowed = " and ".join(b for b in bounds if b)
    allowed = f"{kind} {allowed}".strip()

    def check(key: str, value: Any, _source: _Source | None) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(key, value, allowed)
        if whole and value != int(value):
            raise _bad(key, value, allowed)
        if not low <= value <= high:
            raise _bad(key, value, allowed)
        return int(value) if whole else float(value)

    return check


def _in_unit(key: str, value: Any) -> float:
    return number(0, 1)(key, value, None)


def choice(choices: tuple[str, ...]) -> Check:
    def check(key: str, value: Any, _source: _Source | None) -> str:
        if value not in choices:
            raise _bad(key, value, "one of " + ", ".join(choices))
        return str(value)

    return check


def auto_or(check: Check) -> Check:
    """``auto`` (None: the engine's measured best) or a value ``check`` accepts."""

    def checked(key: str, value: Any, source: _Source | None) -> Any:
        if value == "auto":
            return None
        try:
            return check(key, value, source)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(": use ", ": use auto or ", 1)) from None

    return checked


def torch_device(key: str, value: Any, _source: _Source) -> str:
    """torch's device: auto, cpu, cuda, or cuda:N (the GPU torch numbers N)."""
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise _bad(key, value, "auto, cpu, cuda or cuda:N")
    return value


def flag(key: str, value: Any, _source: _Source) -> bool:
    if not isinstance(value, bool):
        raise _bad(key, value, "yes or no")
    return value


def megabytes(key: str, value: Any, source: _Source) -> int:
    return int(number(0)(key, value, source) * 2**20)


def command(key: str, value: Any, _source: _Source) -> tuple[str, ...]:
    """A command, as one string or a list of its words."""
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
        raise _bad(key, value, "a command, as a string or a list of strings")
    return tuple(words)


def path_or_none(key: str, value: Any, source: _Source) -> Path | None:
    """A path, or None where the option is empty (its default applies)."""
    if value in ("", None):
        return None
    if not isinstance(value, str):
        raise _bad(key, value, "a path")
    return source.filename(key)


def cache_dir(key: str, value: Any, source: _Source) -> Path:
    return path_or_none(key, value, source) or source.config_dir / "musicnn"


def database_file(key: str, value: Any, source: _Source) -> Path:
    """musicnn.db beside the library (in the config dir for an in-memory library)."""
    if (path := path_or_none(key, value, source)) is not None:
        return path
    if str(source.library) == ":memory:":
        return source.config_dir / "musicnn.db"
    return source.library.with_name("musicnn.db")


def mood_list(key: str, value: Any, source: _Source) -> tuple[Mood, ...]:
    """The model's default moods merged key by key with the user's, checked.

    Reads ``model_name``, which ``Settings`` lists (so checks) before ``moods``.
    """
    model = source.parsed["model_name"]
    return tuple(parse_moods(merged_moods(model, value), ModelInfo.load(model).classes))


def merged_moods(model: str, user: Any) -> dict[str, dict[str, Any]]:
    """``model``'s default moods, with the user's ``moods`` merged key by key."""
    user = user if user is not None else {}
    if not isinstance(user, dict):
        raise _bad("moods", user, "a mapping of mood names to {tags: [...], threshold: N}")
    merged: dict[str, dict[str, Any]] = {n: dict(s) for n, s in MODEL_MOODS[model].items()}
    for name, spec in user.items():
        if not isinstance(spec, dict):
            raise MoodConfigError(f"musicnn.moods.{name}: give {{tags: [...], threshold: N}}")
        _known_keys(f"musicnn.moods.{name}", spec, ("tags", "threshold"))
        merged.setdefault(str(name), {}).update(spec)
    return merged


def _known_keys(where: str, given: Mapping[str, Any], known: Iterable[str]) -> None:
    """A misspelt key would be silently ignored: name it, with the closest known one."""
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), 1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
            raise ConfigError(f"{where}: unknown option {key!r} ({hint})")


def parse_moods(config: Mapping[str, Mapping[str, Any]], classes: tuple[str, ...]) -> list[Mood]:
    """Moods from their configuration; an empty tag list switches one off.

    Every tag must be one of the model's ``classes``, thresholds lie in
    0..1, and no label may contain another: ``mood:happy`` is a substring
    query, so ``happy`` inside ``unhappy`` would match tracks it should not.
    """
    out = []
    for name, spec in config.items():
        tags = spec.get("tags", [])
        if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
            raise MoodConfigError(f"musicnn.moods.{name}.tags: give a list of model tags")
        unknown = [t for t in tags if t not in classes]
        if unknown:
            close = difflib.get_close_matches(unknown[0], classes, 3, 0.5)
            offer = f"closest: {', '.join(close)}" if close else f"its tags: {', '.join(classes)}"
            raise MoodConfigError(
                f"musicnn.moods.{name}: the model has no tag {', '.join(map(repr, unknown))} "
                f"({offer})"
            )
        threshold = _in_unit(f"moods.{name}.threshold", spec.get("threshold", DEFAULT_THRESHOLD))
        if tags:
            out.append(Mood(name, tuple(tags), threshold))
    for a in out:
        for b in out:
            if a is not b and a.name.lower() in b.name.lower():
                raise MoodConfigError(
                    f"musicnn.moods: label {a.name!r} is part of {b.name!r}: "
                    f"`mood:{a.name}` would match both; rename one"
                )
    return out


@dataclass(frozen=True)
class Settings:
    """Everything the plugin reads from its configuration, checked."""

    auto: bool = option("auto", True, flag)
    model_name: str = option("model", "msd", choice(MODELS))
    graph: Path | None = option("graph", "", path_or_none)  # noqa: RUF009 (metadata only)
    model_dir: Path = option("model_dir", "", cache_dir)  # noqa: RUF009 (metadata only)
    database: Path = option("database", "", database_file)  # noqa: RUF009 (metadata only)
    backend: str = option("backend", "auto", choice(BACKENDS))
    precision: str = option("precision", "auto", choice(PRECISIONS))
    device: str = option("device", "auto", torch_device)  # torch's: a CUDA GPU when it sees one
    threads: int = option("threads", 0, number(0, whole=True))  # 0: from cores and memory
    model_threads: int = option("model_threads", 0, number(0, whole=True))  # 0: the engine's
    patch_hop: int = option("patch_hop", 187, number(1, whole=True))
    batch_size: int | None = option("batch_size", "auto", auto_or(number(1, whole=True)))
    timeout: float = option("timeout", 900, number(0))  # 0: no limit
    min_free_memory: int = option("min_free_memory", 512, megabytes)  # bytes
    ffmpeg: tuple[str, ...] = option("ffmpeg", "ffmpeg", command)
    tag_threshold: float = option("tag_threshold", 0.1, number(0, 1))
    max_tags: int = option("max_tags", 5, number(0, whole=True))
    similar_count: int = option("similar_count", 20, number(1, whole=True))
    silence_level: float = option("silence_level", -60, number(-200, 0))  # dBFS, whole track
    moods: tuple[Mood, ...] = option("moods", None, mood_list)


DEFAULTS = {f.metadata["key"]: f.metadata["default"] for f in fields(Settings)}
del DEFAULTS["moods"]  # per model: merged in by the `moods` check


def load_settings(view: Any, library: Path, config_dir: Path, **overrides: Any) -> Settings:
    """Check every option of ``view`` (beets' ``config["musicnn"]``) once.

    ``overrides`` are command-line values by config key; None means unset.
    """
    source = _Source(view, overrides, library, config_dir)
    try:
        given = view.flatten() if view.exists() else {}
    except Exception as exc:  # `musicnn: 5`, a list...
        raise ConfigError(f"musicnn: give a mapping of options ({exc})") from exc
    _known_keys("musicnn", given, [f.metadata["key"] for f in fields(Settings)])
    for f in fields(Settings):
        key, check = f.metadata["key"], f.metadata["check"]
        try:
            raw = source.raw(key)
        except Exception as exc:  # confuse's YAML and type errors
            raise ConfigError(f"musicnn.{key}: {exc}") from exc
        source.parsed[f.name] = check(key, raw, source)
    return Settings(**source.parsed)


def mood_names(view: Any) -> list[str]:
    """The moods the configured model can fill, for ``item_types``; never raises.

    Field types are declared when the plugin loads, before any command, so
    a broken configuration falls back to the model's defaults here and is
    reported when a command checks it.
    """
    try:
        model = view["model"].get()
        user = view["moods"].flatten() if view["moods"].exists() else None
        return [name for name, spec in merged_moods(model, user).items() if spec.get("tags")]
    except Exception:
        return list(MODEL_MOODS["msd"])
