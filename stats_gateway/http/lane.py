"""The expensive lane: a thread with its own event loop, connection pool and engine.

A breakdown with ``includeSeries`` over 100,000 points spends about a second of Python on
its rows and on encoding its answer; on the gateway's event loop that second would stall
every other request, ``/livez`` included. Requests that admission (``http/admission.py``)
finds expensive run here instead, from their queries to their encoded bytes, so the main
loop only waits on a future. The GIL is shared, but Python switches threads every few
milliseconds, so cheap requests keep answering meanwhile. Its connections are its own
(``STATS_GATEWAY_EXPENSIVE_POOL``), so expensive requests cannot take the main pool either.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from stats_gateway.core.engine import StatsEngine

T = TypeVar("T")


class ExpensiveLane:
    def __init__(self, make_pool: Callable[[], Any], make_engine: Callable[[Any], StatsEngine]):
        self._make_pool, self._make_engine = make_pool, make_engine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.engine: StatsEngine | None = None
        self._pool: Any = None  # the lane's own pool, opened and closed on its loop

    async def start(self) -> None:
        """Start the thread and open its pool (from the main loop)."""
        ready = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        # the GIL passes between threads every switch interval: 1 ms rather than 5 ms, so
        # the main loop's many short turns wait less while the lane computes
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self._thread = threading.Thread(target=serve, name="expensive-lane", daemon=True)
        self._thread.start()
        await asyncio.to_thread(ready.wait)
        self._pool = await self._in_lane(self._open_pool())
        self.engine = self._make_engine(self._pool)

    async def _open_pool(self) -> Any:
        pool = self._make_pool()
        await pool.open(wait=True, timeout=30)
        return pool

    async def _in_lane(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "the lane is not started"
        # what a request needs (its tenant session) travels in ``work``'s arguments
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def run(self, work: Callable[[StatsEngine], Coroutine[Any, Any, T]]) -> T:
        """``work(engine)`` in the lane, with the lane's engine (in no request's session:
        ``work`` binds its own); its result or exception."""
        assert self.engine is not None, "the lane is not started"
        return await self._in_lane(work(self.engine))

    async def stop(self) -> None:
        if self._loop is None:
            return
        if self._pool is not None:
            await self._in_lane(self._pool.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
        self._loop = None
