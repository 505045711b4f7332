"""A one-line progress bar for the loaders (``demo``, ``load``), written to stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A one-line text progress bar with throughput; redrawn at most ten times a second,
    and only on a terminal (a log gets the final line alone). Without a ``total`` (input
    from a pipe) it shows the count and the rate alone."""

    WIDTH = 30

    def __init__(self, total: int | None, stream: TextIO | None = None):
        self.total = None if total is None else max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = self.drawn = time.perf_counter()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.live and now - self.drawn >= 0.1:
            self.drawn = now
            self._draw(now, "\r")

    def finish(self) -> None:
        self._draw(time.perf_counter(), "\r" if self.live else "")
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now: float, prefix: str) -> None:
        rate = self.done / max(now - self.started, 1e-9)
        if self.total is None:
            self.stream.write(f"{prefix}loading {self.done:,} events {rate:,.0f} ev/s ")
        else:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * self.WIDTH)
            self.stream.write(f"{prefix}loading [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                              f"{fraction:4.0%} {self.done:,}/{self.total:,} events "
                              f"{rate:,.0f} ev/s ")
        self.stream.flush()
