"""Wall time spent per section of training (env stepping, inference, teacher, learning)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Accumulates ``time.perf_counter`` seconds per named section."""

    def __init__(self) -> None:
        self.totals: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[name] += time.perf_counter() - start
