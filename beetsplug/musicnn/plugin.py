"""The beets glue: configuration, field types, ``beet musicnn`` and the import hook.

Kept thin and cheap to import: numpy, essentia and tensorflow load only
when something is analyzed, so enabling the plugin costs ``beet`` nothing
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

from .discovery import SimilarQuery
from .writing import register_mood_tag, write_moods

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Item, Library

    from .importing import ImportAnalysis
    from .runner import Runner
    from .store import Store

DEFAULT_MOODS = {
    "happy": {"tags": ["happy"], "threshold": 0.75},
    "sad": {"tags": ["sad"], "threshold": 0.75},
    "relaxed": {"tags": ["chill", "chillout", "Mellow", "easy listening"], "threshold": 0.75},
    "party": {"tags": ["party", "dance"], "threshold": 0.75},
}


class MusicnnOpts(Protocol):
    album: bool
    failed: bool
    retry_failed: bool
    force: bool
    pretend: bool
    threads: int | None
    write: bool | None
    remap: bool


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
                "batch_size": 1,
                "backend": "tensorflow",
                "model_threads": 0,
                "timeout": 900,
                "min_free_memory": 512,
                "ffmpeg": "ffmpeg",
                "tag_threshold": 0.1,
                "max_tags": 5,
                "moods": DEFAULT_MOODS,
                "similar_count": 20,
            }
        )
        # Our own field names: acousticbrainz and xtractor already declare
        # mood_happy, danceable... as Float, and unequal types break beets.
        scores = {f"musicnn_{name}": types.Float(3) for name in _mood_names(self.config["moods"])}
        self.item_types = {
            "mood": types.STRING,
            "musicnn_genre": types.STRING,
            "musicnn_tags": types.STRING,
            "musicnn_model": types.STRING,
            "musicnn_analyzed": types.DATE,
            **scores,
        }
        self.album_types = {"mood": types.STRING, "musicnn_genre": types.STRING, **scores}
        register_mood_tag()
        self._import: ImportAnalysis | None = None
        self._store: Store | None = None
        if self.config["auto"].get(bool):
            self.register_listener("import_begin", self.import_begin)
            self.register_listener("import_task_files", self.import_task_files)
            self.register_listener("import", self.import_end)
        self.register_listener("item_removed", self.item_removed)
        self.register_listener("cli_exit", self.close_store)
        self.register_listener("library_opened", self.library_opened)
        self._lib: Library | None = None
        SimilarQuery.resolve = self.resolve_similar
        self.item_queries = {"similar": SimilarQuery}

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("musicnn", help="tag moods and genres by listening with MusiCNN")
        cmd.parser.usage += " [QUERY]"
        cmd.parser.add_album_option()
        cmd.parser.add_option(
            "-f", "--force", action="store_true", default=False,
            help="analyze again even items already analyzed; replace mood tags set by others",
        )  # fmt: skip
        cmd.parser.add_option(
            "-p", "--pretend", action="store_true", default=False,
            help="list the items that would be analyzed, and stop",
        )  # fmt: skip
        cmd.parser.add_option(
            "-t", "--threads", type="int", default=None,
            help="worker threads (default: from cores and free memory)",
        )  # fmt: skip
        cmd.parser.add_option(
            "-w", "--write", action="store_true", dest="write", default=None,
            help="write the mood tag into the files (default: import.write)",
        )  # fmt: skip
        cmd.parser.add_option(
            "-W", "--nowrite", action="store_false", dest="write",
            help="do not write tags to the files",
        )  # fmt: skip
        cmd.parser.add_option(
            "--failed", action="store_true", default=False,
            help="list the items whose analysis failed, with the reason, and stop",
        )  # fmt: skip
        cmd.parser.add_option(
            "--retry-failed", action="store_true", default=False,
            help="try again the items that failed before (otherwise left alone)",
        )  # fmt: skip
        cmd.parser.add_option(
            "--remap", action="store_true", default=False,
            help="only re-derive every field from the stored analyses (no audio is decoded)",
        )  # fmt: skip
        cmd.func = self.command
        similar = ui.Subcommand("musicnn-similar", help="list the tracks that sound most alike")
        similar.parser.usage += " QUERY"
        similar.parser.add_option(
            "-n", "--count", type="int", default=10, help="how many tracks (default 10)"
        )
        similar.parser.add_option(
            "--where", action="append", default=[], metavar="QUERY",
            help="only tracks matching this beets query (repeat to add terms)",
        )  # fmt: skip
        similar.parser.add_option(
            "-o", "--output", metavar="FILE.m3u", help="also write them as an M3U playlist"
        )
        similar.func = self.similar_command
        return [cmd, similar]

    def similar_command(self, lib: Library, opts: Any, args: list[str]) -> None:
        from .discovery import nearest, open_index, print_results, write_m3u
        from .errors import NotReady

        if not args:
            raise ui.UserError("give a query for the track(s) to start from")
        try:
            index = open_index(self._open_store(lib), self.config["model"].as_str())
            results = nearest(lib, index, list(lib.items(args)), opts.count, opts.where, self._log)
        except NotReady as exc:
            raise ui.UserError(f"musicnn-similar: {exc}") from exc
        if not results:
            ui.print_("nothing matches --where among the analyzed tracks")
        items = print_results(lib, results)
        if opts.output:
            write_m3u(Path(opts.output), items)
            self._log.info("wrote {} tracks to {}", len(items), opts.output)

    def resolve_similar(self, pattern: str) -> list[int]:
        """The ids ``similar:PATTERN`` matches: the nearest items to PATTERN's."""
        from beets.library import Library

        from .discovery import nearest, open_index
        from .errors import NotReady

        lib = self._lib or Library(beets_config["library"].as_filename())
        try:
            index = open_index(self._open_store(lib), self.config["model"].as_str())
            seeds = list(lib.items(pattern))
            count = self.config["similar_count"].get(int)
            return [item_id for item_id, _ in nearest(lib, index, seeds, count, [], self._log)]
        except NotReady as exc:
            self._log.warning("similar:{}: {}", pattern, exc)
            return []

    def library_opened(self, lib: Library) -> None:
        self._lib = lib

    def command(self, lib: Library, opts: MusicnnOpts, args: list[str]) -> None:
        from .errors import Busy, ModelError
        from .lock import exclusive
        from .runner import Interrupted, Summary

        if opts.album:
            items = [item for album in lib.albums(args) for item in album.items()]
        else:
            items = list(lib.items(args))
        runner = self._runner(lib, threads=opts.threads)
        try:
            if opts.failed:
                _list_failures(runner.store.failures(), items)
                return
            if opts.pretend:
                planned, planner = runner.plan(items, opts.force, opts.retry_failed)
                for _job, item in planned:
                    ui.print_(format(item))
                ui.print_(f"{len(planned)} to analyze, {planner.skipped} up to date")
                return
            with exclusive(runner.lock_path):
                if opts.remap:
                    summary = Summary(derived=runner.refresh())
                else:
                    summary = runner.run(items, opts.force, opts.retry_failed)
                if ui.should_write(opts.write):
                    summary.written, summary.kept = write_moods(
                        lib,
                        runner.store,
                        runner.moods({i.id for i in items}),
                        opts.force,
                        self._log,
                    )
        except Interrupted as exc:
            self._log.info("{}", exc.summary)
            raise ui.UserError(f"{exc}; all finished work is kept: run again to go on") from None
        except (ModelError, Busy) as exc:
            raise ui.UserError(f"musicnn: {exc}") from exc
        finally:
            runner.close()
        self._log.info("{}", summary)
        if summary.failed:
            raise ui.UserError(f"{summary.failed} file(s) could not be analyzed (see above)")

    def import_begin(self, session: ImportSession) -> None:
        from .importing import ImportAnalysis

        try:
            self._import = ImportAnalysis(self._runner(session.lib))
        except Exception as exc:  # no analysis, but never a failed import
            self._log.error("not analyzing during this import: {}", exc)

    def import_task_files(self, session: ImportSession, task: ImportTask) -> None:
        if self._import is not None:
            self._import.add(task.imported_items())

    def import_end(self, lib: Library, paths: list[bytes]) -> None:
        """Wait for the analyses, so `beet import` returns with every item done."""
        if self._import is None:
            return
        analysis, self._import = self._import, None
        try:
            summary = analysis.finish()
            if ui.should_write():
                summary.written, summary.kept = write_moods(
                    lib,
                    analysis.runner.store,
                    analysis.runner.moods(analysis.imported),
                    False,
                    self._log,
                )
            ui.print_(f"musicnn: {summary}")
        except Exception as exc:
            self._log.error("analysis during import failed: {}", exc)
        finally:
            analysis.close()

    def item_removed(self, item: Item) -> None:
        """Forget a removed item's analysis (`beet rm`)."""
        self._open_store(item._db).remove([item.id])

    def _open_store(self, lib: Library) -> Store:
        """The plugin database, opened once per command."""
        from .store import Store

        if self._store is None:
            self._store = Store(_path_option(self.config["database"], _beside_library(lib)))
        return self._store

    def close_store(self, lib: Library) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _runner(self, lib: Library, threads: int | None = None) -> Runner:
        from .errors import ModelError, MoodConfigError
        from .inference import BACKENDS
        from .moods import parse_moods
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
                backend=c["backend"].as_choice(BACKENDS),
                model_threads=c["model_threads"].get(int),
                timeout=c["timeout"].as_number(),
                min_free_memory=int(c["min_free_memory"].as_number() * 2**20),
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


def _list_failures(failures: dict[int, tuple[bytes, str, float]], items: list[Item]) -> None:
    import time

    listed = 0
    for item in items:
        if item.id in failures:
            _path, error, when = failures[item.id]
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
            ui.print_(f"{item.filepath}: {error} ({stamp})")
            listed += 1
    ui.print_(f"{listed} failed item(s); `beet musicnn --retry-failed` tries them again")


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
