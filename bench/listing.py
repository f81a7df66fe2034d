"""`beet ls` on a 10,000-item library, without our fields and with them.

Run: .venv/bin/python -m bench.listing [ITEMS] [REPEATS]

Builds the library of bench.rerun (items with stored analyses, fields
not yet derived), times `beet ls` (median of REPEATS processes), lets
`beet musicnn` derive every item's fields (no audio is decoded), and
times `beet ls` again on the same library. Target: under 20% slower.
"""

from __future__ import annotations

import statistics
import sys

from bench.common import built, measure
from bench.rerun import build
from tests.beet import BEET


def _median_wall(env: dict[str, str], *args: str, repeats: int) -> float:
    walls = []
    for _ in range(repeats):
        run = measure([*BEET, *args], env)
        if run.returncode != 0:
            sys.exit(run.stderr)
        walls.append(run.wall)
    return statistics.median(walls)


def main(count: int = 10_000, repeats: int = 5) -> None:
    with built(build, count) as root:
        env = {"BEETSDIR": str(root)}
        cases = [("ls",), ("ls", "-f", "$title $mood $musicnn_happy"), ("ls", "artist:artist 1")]
        before = {case: _median_wall(env, *case, repeats=repeats) for case in cases}
        derive = measure([*BEET, "musicnn"], env)
        print(f"{count} items; fields derived by `beet musicnn` in {derive.wall:.1f} s")
        print(f"    {derive.stderr.strip().splitlines()[-1]}")
        for case in cases:
            after = _median_wall(env, *case, repeats=repeats)
            print(f"beet {' '.join(case):40} without fields {before[case]:5.2f} s   "
                  f"with {after:5.2f} s   slowdown {after / before[case] - 1:+.0%}")  # fmt: skip


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
