"""The planner's skip rules and the summary line."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from beetsplug.musicnn.decode import Fingerprint
from beetsplug.musicnn.derive import Derived
from beetsplug.musicnn.runner import Planner, Summary
from beetsplug.musicnn.store import Stamp

KNOWN = Fingerprint("ab" * 10, 12.0)


def item(item_id: int, path: Path) -> Any:
    return SimpleNamespace(id=item_id, path=os.fsencode(path))


def planner(path: Path, failed: set[int] = frozenset(), **kwargs: Any) -> tuple[Planner, Any]:
    st = path.stat()
    stamp = Stamp(st.st_size, st.st_mtime, KNOWN, "msd-musicnn-1", 187)
    return Planner({1: stamp}, failed, "msd-musicnn-1", 187, **kwargs), item(1, path)


def test_an_unchanged_file_is_skipped_unopened(tmp_path: Path) -> None:
    (path := tmp_path / "a.mp3").write_bytes(b"x" * 10)
    plan, it = planner(path)
    assert plan(it) is None and plan.skipped == 1


def test_a_changed_file_is_checked_by_fingerprint(tmp_path: Path) -> None:
    (path := tmp_path / "a.mp3").write_bytes(b"x" * 10)
    plan, it = planner(path)
    path.write_bytes(b"y" * 11)
    job = plan(it)
    assert job is not None and job.known == KNOWN and plan.skipped == 0


def test_another_model_or_hop_or_force_analyzes_in_full(tmp_path: Path) -> None:
    (path := tmp_path / "a.mp3").write_bytes(b"x" * 10)
    _, it = planner(path)
    stamp = Stamp(10, path.stat().st_mtime, KNOWN, "msd-musicnn-1", 187)
    for model_id, hop, force in [("mtt-musicnn-2", 187, False), ("msd-musicnn-1", 93, False),
                                 ("msd-musicnn-1", 187, True)]:  # fmt: skip
        job = Planner({1: stamp}, set(), model_id, hop, force=force)(it)
        assert job is not None and job.known is None
    new = Planner({}, set(), "msd-musicnn-1", 187)(item(2, path))
    assert new is not None and new.known is None


def test_failed_items_wait_for_retry_or_force(tmp_path: Path) -> None:
    (path := tmp_path / "a.mp3").write_bytes(b"x" * 10)
    plan, it = planner(path, failed={1})
    assert plan(it) is None and plan.failed_before == 1
    retry, _ = planner(path, failed={1}, retry_failed=True)
    assert retry(it) is None and retry.skipped == 1  # retried, and found up to date
    forced, _ = planner(path, failed={1}, force=True)
    assert forced(it) is not None


def test_summary_line() -> None:
    summary = Summary(analyzed=3, unchanged=1, skipped=5, failed=1, failed_before=2,
                      derived=Derived(changed=4, silent=1), written=2, kept=1,
                      audio_seconds=300, wall_seconds=10)  # fmt: skip
    assert str(summary) == (
        "analyzed 3, up to date 6 (1 re-checked: file changed, audio the same), "
        "failed 1 (+2 failed before: --retry-failed), fields updated on 4, "
        "silent 1 (no mood, genre or tags), mood tags written 2, kept 1; "
        "300 s of audio in 10.0 s (30.0 s of audio per second)"
    )
    assert str(Summary(skipped=2)) == "analyzed 0, up to date 2, failed 0, fields updated on 0"
