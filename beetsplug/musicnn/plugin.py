"""The beets glue: configuration, field types, ``beet musicnn`` and the import hook.

Kept thin and cheap to import: numpy, essentia and tensorflow load only
when something is analysed, so enabling the plugin costs ``beet`` nothing
noticeable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from beets import config as beets_config
from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Library

    from .runner import Runner

DEFAULT_MOODS = {
    "happy": {"tags": ["happy"], "threshold": 0.75},
    "sad": {"tags": ["sad"], "threshold": 0.75},
    "relaxed": {"tags": ["chill", "chillout", "Mellow", "easy listening"], "threshold": 0.75},
    "party": {"tags": ["party", "dance"], "threshold": 0.75},
}


class MusicnnOpts(Protocol):
    force: bool
    pretend: bool
    threads: int | None


class MusicnnPlugin(BeetsPlugin):
    def __init__(self) -> None:
        super().__init__("musicnn")  # not the module's name, which is "plugin"
        self.config.add(
            {
                "auto": True,
                "model": "msd",
                "graph": "",
                "model_dir": "",
                "database": "",
                "threads": 0,
                "patch_hop": 187,
                "batch_size": 64,
                "timeout": 900,
                "ffmpeg": "ffmpeg",
                "tag_threshold": 0.1,
                "max_tags": 5,
                "moods": DEFAULT_MOODS,
            }
        )
        # Our own field names: acousticbrainz and xtractor already declare
        # mood_happy, danceable... as Float, and unequal types break beets.
        self.item_types = {
            "mood": types.STRING,
            "musicnn_genre": types.STRING,
            "musicnn_tags": types.STRING,
            "musicnn_model": types.STRING,
            "musicnn_analyzed": types.DATE,
            **{f"musicnn_{name}": types.Float(3) for name in _mood_names(self.config["moods"])},
        }
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("musicnn", help="tag moods and genres by listening with MusiCNN")
        cmd.parser.add_option(
            "-f", "--force", action="store_true", default=False,
            help="analyse again even items already analysed",
        )  # fmt: skip
        cmd.parser.add_option(
            "-p", "--pretend", action="store_true", default=False,
            help="list the items that would be analysed, and stop",
        )  # fmt: skip
        cmd.parser.add_option(
            "-t", "--threads", type="int", default=None,
            help="worker threads (default: from cores and free memory)",
        )  # fmt: skip
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Library, opts: MusicnnOpts, args: list[str]) -> None:
        from .provision import ModelError

        items = list(lib.items(args))
        runner = self._runner(lib, threads=opts.threads)
        try:
            if opts.pretend:
                planned, skipped = runner.plan(items, opts.force)
                for _job, item in planned:
                    ui.print_(format(item))
                ui.print_(f"{len(planned)} to analyse, {skipped} already analysed")
                return
            summary = runner.run(items, force=opts.force)
        except ModelError as exc:
            raise ui.UserError(f"musicnn: {exc}") from exc
        except KeyboardInterrupt:
            raise ui.UserError("interrupted; everything analysed so far is kept") from None
        finally:
            runner.close()
        self._log.info("{}", summary)
        if summary.failed:
            raise ui.UserError(f"{summary.failed} file(s) could not be analysed (see above)")

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """Analyse a task's items during import; a failure never fails the import."""
        runner = self._runner(session.lib)
        try:
            summary = runner.run(task.imported_items(), progress=False)
            self._log.info("{}", summary)
        except Exception as exc:
            self._log.error("analysis during import failed: {}", exc)
        finally:
            runner.close()

    def _runner(self, lib: Library, threads: int | None = None) -> Runner:
        from .moods import MoodConfigError, parse_moods
        from .provision import ModelError
        from .runner import Runner, Settings

        c = self.config
        try:
            settings = Settings(
                model=c["model"].as_str(),
                graph=Path(c["graph"].as_filename()) if c["graph"].get() else None,
                model_dir=_path_option(c["model_dir"], Path(beets_config.config_dir()) / "musicnn"),
                database=_path_option(c["database"], _beside_library(lib)),
                threads=threads if threads is not None else c["threads"].get(int),
                patch_hop=c["patch_hop"].get(int),
                batch_size=c["batch_size"].get(int),
                timeout=c["timeout"].as_number(),
                ffmpeg=tuple(c["ffmpeg"].as_str_seq()),
                moods=tuple(parse_moods(_moods(c["moods"]))),
                tag_threshold=c["tag_threshold"].as_number(),
                max_tags=c["max_tags"].get(int),
            )
            return Runner(lib, settings, self._log)
        except (ModelError, MoodConfigError) as exc:
            raise ui.UserError(f"musicnn: {exc}") from exc


def _mood_names(view: Any) -> list[str]:
    """Mood names from every config source (a confuse view, not a dict)."""
    return list(view.keys())


def _moods(view: Any) -> dict[str, dict[str, object]]:
    """The moods, merged key by key, so a user may change one threshold only."""
    moods: dict[str, dict[str, object]] = {}
    for name in _mood_names(view):
        tags = view[name]["tags"]
        spec: dict[str, object] = {"tags": tags.as_str_seq() if tags.exists() else []}
        if view[name]["threshold"].exists():
            spec["threshold"] = view[name]["threshold"].as_number()
        moods[name] = spec
    return moods


def _path_option(view: Any, default: Path) -> Path:
    return Path(view.as_filename()) if view.get() else default


def _beside_library(lib: Library) -> Path:
    """musicnn.db next to the library database (or the config dir for in-memory ones)."""
    library = os.fsdecode(lib.path)
    if library == ":memory:":
        return Path(beets_config.config_dir()) / "musicnn.db"
    return Path(library).with_name("musicnn.db")
