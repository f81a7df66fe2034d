"""beets glue for "more like this": `beet musicnn-similar` and the `similar:` query.

The query behaves like a field query whose SQL clause is ``id IN (...)``
with the N nearest items, so beets filters in SQL and it combines with
other terms (ANDed), works in ``beet ls`` and in smartplaylist.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beets import ui
from beets.dbcore.query import FieldQuery

from .errors import NotReady

if TYPE_CHECKING:
    from beets.library import Item, Library

    from .runner import Log
    from .similarity import Index
    from .store import Store


def open_index(store: Store, model_name: str) -> Index:
    """The similarity index of the analyses made with model ``model_name`` (msd, mtt)."""
    from .similarity import load_index

    ids = store.model_ids(f"{model_name}-musicnn-")
    if not ids:
        raise NotReady("no analyzed items yet: run `beet musicnn` first")
    return load_index(store, ids[0])


def nearest(
    lib: Library, index: Index, seeds: Sequence[Item], count: int, where: Sequence[str], log: Log
) -> list[tuple[int, float]]:
    """The ``count`` nearest items to ``seeds``; says which seeds were not analyzed."""
    if not seeds:
        raise NotReady("no item matches the query")
    analyzed = [s.id for s in seeds if s.id in index]
    if not analyzed:
        raise NotReady(
            f"none of the {len(seeds)} matching item(s) is analyzed yet, or each is silent: "
            "run `beet musicnn` with the same query first"
        )
    if len(analyzed) < len(seeds):
        log.warning(
            "{} of {} seed item(s) not analyzed yet (run `beet musicnn`); using the others",
            len(seeds) - len(analyzed),
            len(seeds),
        )
    allowed = {item.id for item in lib.items(list(where))} if where else None
    return index.nearest(analyzed, count, allowed)


def write_m3u(path: Path, items: Sequence[Item]) -> None:
    lines = ["#EXTM3U", *(os.fsdecode(item.path) for item in items)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class SimilarQuery(FieldQuery[str]):
    """``similar:SEEDS`` matches the items nearest to those matching SEEDS.

    ``resolve`` turns the seed query into the ids to match; each plugin
    instance gets its own subclass from ``similar_query``. The ids are
    computed once per query object.
    """

    @staticmethod
    def resolve(pattern: str) -> list[int]:
        raise NotImplementedError("use similar_query() for a class bound to a resolver")

    def __init__(self, field_name: str, pattern: str, fast: bool = True):
        super().__init__(field_name, pattern, fast)
        self._ids: list[int] | None = None

    @property
    def ids(self) -> list[int]:
        if self._ids is None:
            self._ids = type(self).resolve(self.pattern)
        return self._ids

    @property
    def field_names(self) -> set[str]:
        return {"id"}

    def clause(self) -> tuple[str, Sequence[Any]]:
        if not self.ids:
            return "0", ()
        return f"id IN ({','.join('?' * len(self.ids))})", self.ids

    def match(self, obj: Any) -> bool:
        return obj.id in self.ids


def similar_query(resolve: Callable[[str], list[int]]) -> type[SimilarQuery]:
    """A ``SimilarQuery`` class whose seeds are resolved by ``resolve``."""
    return type("SimilarQuery", (SimilarQuery,), {"resolve": staticmethod(resolve)})


def print_results(lib: Library, results: list[tuple[int, float]]) -> list[Item]:
    items = []
    for item_id, score in results:
        item = lib.get_item(item_id)
        if item is not None:
            ui.print_(f"{score:.3f}  {format(item)}")
            items.append(item)
    return items
