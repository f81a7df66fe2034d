"""The analyzer's speed by decode workers, on the default engine: what `threads: 0` picks.

Run: .venv/bin/python -m bench.workers [TRACKS] [SHORTEST] [LONGEST]
(default 8 tracks of 120 to 240 s, the bench tracks of bench.throughput).
The model is loaded before timing; each worker count runs twice, in turns,
and the better run counts. ``analyzer.default_threads`` follows this sweep.
"""

from __future__ import annotations

import os
import sys
import time

import beetsplug.musicnn  # noqa: F401  before numpy: it sets numpy's BLAS threads
from bench.common import MODELS, tracks

WORKERS = (1, 2, 3, 4, 6, 8)


def main(count: int = 8, shortest: float = 120, longest: float = 240) -> None:
    from beetsplug.musicnn.analyzer import Analyzer, Job, Outcome, Result, default_threads
    from beetsplug.musicnn.engine import choose
    from beetsplug.musicnn.inference import shared_predictor
    from beetsplug.musicnn.provision import ModelInfo, provide

    paths = tracks(count, shortest, longest)
    info, engine = ModelInfo.load("msd"), choose("auto", "auto", None, print)
    graph = provide(info, MODELS, structure=engine.structure).path
    predictor = shared_predictor(
        graph, info, engine.backend, engine.precision, 0, MODELS / "openvino"
    )
    print(f"{len(paths)} tracks; {engine}; {os.cpu_count()} cores; "
          f"default threads here: {default_threads()}")  # fmt: skip
    best = dict.fromkeys(WORKERS, 0.0)
    for _round in range(2):
        for workers in WORKERS:
            outcomes: list[Outcome] = []
            analyzer = Analyzer(lambda: predictor, threads=workers, batch_size=engine.batch_size)
            start = time.perf_counter()
            analyzer.run([Job(i, os.fsencode(p)) for i, p in enumerate(paths)], outcomes.append)
            audio = sum(o.seconds for o in outcomes if isinstance(o, Result))
            best[workers] = max(best[workers], audio / (time.perf_counter() - start))
    for workers, rate in best.items():
        print(f"{workers} workers: {rate:6.1f} s of audio per second")


if __name__ == "__main__":
    main(*(int(a) if i == 0 else float(a) for i, a in enumerate(sys.argv[1:])))
