"""The beets glue: field types, ``beet musicnn``, ``musicnn-similar``, import and removal.

Kept thin and cheap to import: numpy, essentia and tensorflow load only
when something is analyzed, so enabling the plugin costs ``beet`` nothing
noticeable. Every expected failure (``MusicnnError``) becomes one
``ui.UserError`` line here, and nowhere else.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from beets import config as beets_config
from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

from .config import DEFAULTS, Settings, load_settings, mood_names
from .discovery import similar_query
from .errors import ConfigError, MusicnnError
from .writing import register_mood_tag

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Item, Library

    from .importing import ImportAnalysis
    from .store import Store


class MusicnnOpts(Protocol):
    album: bool
    failed: bool
    retry_failed: bool
    force: bool
    pretend: bool
    threads: int | None
    write: bool | None
    derive_only: bool  # --remap


P = ParamSpec("P")
R = TypeVar("R")


def _user_errors(
    command: Callable[Concatenate[MusicnnPlugin, P], R],
) -> Callable[Concatenate[MusicnnPlugin, P], R]:
    """Turn the expected failures into one `error:` line (exit status 1)."""

    @functools.wraps(command)
    def wrapper(self: MusicnnPlugin, *args: P.args, **kwargs: P.kwargs) -> R:
        from .runner import Interrupted

        try:
            return command(self, *args, **kwargs)
        except MusicnnError as exc:
            if isinstance(exc, Interrupted):
                self._log.info("{}", exc.summary)
            message = str(exc)
            prefixed = message if message.startswith("musicnn") else f"musicnn: {message}"
            raise ui.UserError(prefixed) from exc

    return wrapper


class MusicnnPlugin(BeetsPlugin):
    def __init__(self) -> None:
        super().__init__("musicnn")  # not the module's name, which is "plugin"
        self.config.add(DEFAULTS)
        # Our own field names: acousticbrainz and xtractor already declare
        # mood_happy, danceable... as Float, and unequal types break beets.
        scores = {f"musicnn_{name}": types.Float(3) for name in mood_names(self.config)}
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
        self._lib: Library | None = None
        self._checked = False  # the settings were checked (and any error reported)
        self._loaded: dict[tuple[Any, ...], Settings] = {}
        if _auto(self.config):
            self.register_listener("import_begin", self.import_begin)
            self.register_listener("import_task_files", self.import_task_files)
            self.register_listener("import", self.import_end)
        self.register_listener("item_removed", self.item_removed)
        self.register_listener("cli_exit", self.cli_exit)
        self.register_listener("library_opened", self.library_opened)
        self.item_queries = {"similar": similar_query(self.resolve_similar)}

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
            "--remap", action="store_true", dest="derive_only", default=False,
            help="only derive every field again from the stored analyses (no audio is decoded)",
        )  # fmt: skip
        cmd.func = self.command
        similar = ui.Subcommand("musicnn-similar", help="list the tracks that sound most alike")
        similar.parser.usage += " QUERY"
        similar.parser.add_option(
            "-n", "--count", type="int", default=None,
            help="how many tracks (default: the similar_count option)",
        )  # fmt: skip
        similar.parser.add_option(
            "--where", action="append", default=[], metavar="QUERY",
            help="only tracks matching this beets query (repeat to add terms)",
        )  # fmt: skip
        similar.parser.add_option(
            "-o", "--output", metavar="FILE.m3u", help="also write them as an M3U playlist"
        )
        similar.func = self.similar_command
        return [cmd, similar]

    def _settings(self, lib: Library, **overrides: Any) -> Settings:
        """The checked settings for ``lib`` (ConfigError names a bad option), once each."""
        self._checked = True
        key = (lib.path, tuple(sorted(overrides.items())))
        if key not in self._loaded:
            library, config_dir = Path(os.fsdecode(lib.path)), Path(beets_config.config_dir())
            self._loaded[key] = load_settings(self.config, library, config_dir, **overrides)
        return self._loaded[key]

    @_user_errors
    def command(self, lib: Library, opts: MusicnnOpts, args: list[str]) -> None:
        from .lock import exclusive
        from .runner import Summary
        from .session import Session

        if opts.album:
            items = [item for album in lib.albums(args) for item in album.items()]
        else:
            items = list(lib.items(args))
        settings = self._settings(lib, threads=opts.threads)
        if opts.failed:
            _list_failures(self._open_store(settings).failures(), items)
            return
        session = Session(lib, settings, self._log)
        try:
            if opts.pretend:
                plan = session.runner.plan(items, force=opts.force, retry_failed=opts.retry_failed)
                for _job, item in plan.jobs:
                    ui.print_(format(item))
                ui.print_(f"{len(plan.jobs)} to analyze, {plan.skipped} up to date")
                return
            with exclusive(session.lock_path):
                if opts.derive_only:
                    summary = Summary(derived=session.fields.derive(), derive_only=True)
                else:
                    summary = session.analyze(
                        items, force=opts.force, retry_failed=opts.retry_failed
                    )
                if ui.should_write(opts.write):
                    session.write_moods({i.id for i in items}, opts.force, summary)
        finally:
            session.close()
        self._log.info("{}", summary)
        if summary.failed:
            raise ui.UserError(f"{summary.failed} file(s) could not be analyzed (see above)")

    @_user_errors
    def similar_command(self, lib: Library, opts: Any, args: list[str]) -> None:
        from .discovery import print_results, write_m3u

        if not args:
            raise ui.UserError("give a query for the track(s) to start from")
        settings = self._settings(lib)
        count = settings.similar_count if opts.count is None else opts.count
        if count < 1:
            raise ui.UserError(f"musicnn-similar: -n {count}: give a count of at least 1")
        results = self._nearest(lib, settings, args, count, opts.where)
        if not results:
            ui.print_("no other analyzed track" + (" matches --where" if opts.where else ""))
        items = print_results(lib, results)
        if opts.output:
            try:
                write_m3u(Path(opts.output), items)
            except OSError as exc:
                message = f"musicnn-similar: cannot write {opts.output}: {exc.strerror}"
                raise ui.UserError(message) from exc
            self._log.info("wrote {} tracks to {}", len(items), opts.output)

    def resolve_similar(self, pattern: str) -> list[int]:
        """The ids ``similar:PATTERN`` matches: the nearest items to PATTERN's."""
        if self._lib is None:
            self._log.warning("similar:{}: no library open", pattern)
            return []
        try:
            settings = self._settings(self._lib)
            found = self._nearest(self._lib, settings, pattern, settings.similar_count, [])
        except MusicnnError as exc:
            self._log.warning("similar:{}: {}", pattern, exc)
            return []
        return [item_id for item_id, _ in found]

    def _nearest(
        self, lib: Library, settings: Settings, seeds: Any, count: int, where: list[str]
    ) -> list[tuple[int, float]]:
        """The ``count`` items nearest to those the query ``seeds`` matches."""
        from .discovery import nearest, open_index

        index = open_index(self._open_store(settings), settings.model_name)
        return nearest(lib, index, list(lib.items(seeds)), count, where, self._log)

    def library_opened(self, lib: Library) -> None:
        self._lib = lib

    def import_begin(self, session: ImportSession) -> None:
        from .importing import ImportAnalysis
        from .session import Session

        try:
            self._import = ImportAnalysis(
                Session(session.lib, self._settings(session.lib), self._log)
            )
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
                analysis.session.write_moods(analysis.imported, False, summary)
            ui.print_(f"musicnn: {summary}")
        except Exception as exc:
            self._log.error("analysis during import failed: {}", exc)
        finally:
            analysis.close()

    def item_removed(self, item: Item) -> None:
        """Forget a removed item's analysis (`beet rm`); never in the way of the removal."""
        if self._lib is None:
            return
        try:
            settings = self._settings(self._lib)
        except ConfigError:
            return  # said once when the command ends (cli_exit)
        try:
            if settings.database.exists():  # no analysis yet: nothing to forget, nothing made
                self._open_store(settings).remove([item.id])
        except MusicnnError as exc:
            self._log.warning("{}: its analysis stays in the plugin database: {}", item, exc)

    def _open_store(self, settings: Settings) -> Store:
        """The plugin database, opened once per command."""
        from .store import Store

        if self._store is None:
            self._store = Store(settings.database)
        return self._store

    def cli_exit(self, lib: Library) -> None:
        """Close the database; warn of a bad option no musicnn command has reported."""
        if self._store is not None:
            self._store.close()
            self._store = None
        if not self._checked:
            try:
                self._settings(lib)
            except MusicnnError as exc:
                self._log.warning("{} (`beet musicnn` stops until it is fixed)", exc)
        self._loaded.clear()  # the next command reads the configuration afresh


def _auto(view: Any) -> bool:
    """Whether to analyze on import; a broken section is reported when a command checks it."""
    try:
        return view["auto"].get() is True
    except Exception:  # `musicnn:` with nothing under it, `musicnn: 5`...
        return False


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
