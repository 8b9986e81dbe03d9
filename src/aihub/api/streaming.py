"""Bridging an async request body to a blocking consumer (an artifact store ``put``)
with bounded memory: at most ``depth`` chunks are in flight between the two."""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


class _Aborted(Exception):
    pass


async def feed_blocking(stream: AsyncIterator[bytes],
                        consume: Callable[[Iterator[bytes]], T], *, depth: int = 8) -> T:
    """Run ``consume(chunks)`` in a worker thread while this coroutine feeds it ``stream``.

    If the client disconnects mid-body, the consumer sees an exception from its iterator
    (so an atomic store writes nothing); if the consumer fails, feeding stops.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    loop = asyncio.get_running_loop()

    def chunks() -> Iterator[bytes]:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise _Aborted("upload interrupted") from item
            yield item  # type: ignore[misc]

    task = loop.run_in_executor(None, lambda: consume(chunks()))

    def put(item: object) -> bool:
        while not task.done():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        async for chunk in stream:
            if chunk and not await loop.run_in_executor(None, put, chunk):
                break
        else:
            await loop.run_in_executor(None, put, _END)
    except BaseException as exc:
        await loop.run_in_executor(None, put, exc)
        with contextlib.suppress(BaseException):
            await task
        raise
    return await task
