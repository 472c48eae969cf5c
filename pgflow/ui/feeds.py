"""Live views shared by every browser that watches the same thing.

A :class:`Feed` keeps one rendered snapshot of a view (a run, or the runs list with given
filters) and pushes it to its subscribers' queues whenever it changes. It refreshes when
a notification arrives on one of its channels (through the :class:`~pgflow.ui.hub.Hub`:
one LISTEN connection for the whole viewer) and, while the view is live, every ``tick``
seconds for what emits no event (map elements and retries progress task by task). That
refresh is one query per watched view, shared by all of its browsers: a browser never
polls. :class:`Feeds` creates a feed for the first subscriber of a key and closes it after
the last one leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Final

from pgflow.errors import PgflowError
from pgflow.ui.hub import Hub

__all__ = ["DEBOUNCE", "Feed", "Feeds", "Message", "Snapshot"]

DEBOUNCE: Final = 0.05  # seconds to gather a burst of notifications into one refresh
QUEUE_SIZE: Final = 16
logger = logging.getLogger("pgflow.ui")


@dataclass(frozen=True, slots=True)
class Message:
    """One server-sent event: its name and its data (one line of JSON)."""

    event: str
    data: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A rendered view, the channels that announce its changes, and its refresh period."""

    message: Message
    channels: frozenset[str] = frozenset()
    tick: float | None = None  # seconds between refreshes without a notification


Produce = Callable[[], Awaitable[Snapshot]]
DB_DOWN: Final = Message("db", '"down"')
DB_UP: Final = Message("db", '"up"')
END: Final = Message("", "")  # ends a stream: the server is stopping


@dataclass(eq=False)
class Feed:
    """One view, refreshed on notifications (and ticks), fanned out to queues."""

    hub: Hub
    produce: Produce
    base_channels: frozenset[str] = frozenset()
    pause: float = DEBOUNCE
    queues: set[asyncio.Queue[Message]] = field(default_factory=set)
    latest: Message | None = None
    db_down: bool = False
    _channels: set[str] = field(default_factory=set)
    _poke: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _tick: float | None = None
    _closed: bool = False
    _stop_status: Callable[[], None] | None = None

    async def open(self) -> None:
        """Listen on the base channels, take the first snapshot, start refreshing."""
        self._stop_status = self.hub.on_status(self._on_status)
        self.db_down = not self.hub.connected
        await self._follow(self.base_channels)
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="pgflow ui feed")

    async def close(self) -> None:
        """Stop refreshing and stop listening."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._stop_status is not None:
            self._stop_status()
        await self._follow(frozenset())

    def poke(self, channel: str = "", payload: str = "") -> None:
        """Refresh soon (a hub notice: any notification on a followed channel)."""
        self._poke.set()

    def subscribe(self) -> asyncio.Queue[Message]:
        """A new queue that gets the current state at once, then every change."""
        queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_SIZE)
        for message in (DB_DOWN if self.db_down else None, self.latest):
            if message is not None:
                queue.put_nowait(message)
        self.queues.add(queue)
        self.poke()  # the snapshot may predate the page the browser just loaded
        return queue

    def end_streams(self) -> None:
        """Tell every subscriber's stream to end (the server is stopping)."""
        self._publish(END)

    def _publish(self, message: Message) -> None:
        for queue in self.queues:
            if queue.full():  # a slow browser gets the newest state, not every step
                queue.get_nowait()
            queue.put_nowait(message)

    def _on_status(self, connected: bool) -> None:
        self.db_down = not connected
        self._publish(DB_UP if connected else DB_DOWN)
        if connected:
            self.poke()

    async def refresh(self) -> None:
        """Take a snapshot; publish it if it changed; follow its channels."""
        try:
            snapshot = await self.produce()
        except PgflowError as exc:
            logger.debug("cannot refresh a live view: %s", exc)
            return
        self._tick = snapshot.tick
        if snapshot.message != self.latest:
            self.latest = snapshot.message
            self._publish(snapshot.message)
        if await self._follow(self.base_channels | snapshot.channels):
            self.poke()  # a change between the snapshot and the LISTEN is not missed

    async def _follow(self, channels: frozenset[str]) -> bool:
        added = channels - self._channels
        for channel in sorted(self._channels - channels):
            await self.hub.unlisten(channel, self.poke)
        for channel in sorted(added):
            await self.hub.listen(channel, self.poke)
        self._channels = set(channels)
        return bool(added)

    async def _loop(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that races the event, and close() would then wait for ever.
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick):
                    await self._poke.wait()
            await asyncio.sleep(self.pause)  # gathers a burst; bounds the refresh rate
            self._poke.clear()
            await self.refresh()


class Feeds:
    """The open feeds by key; a feed lives while it has subscribers."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._feeds: dict[Hashable, Feed] = {}
        self._lock = asyncio.Lock()
        self._leaving: set[asyncio.Future[None]] = set()
        self.ending = False

    def __len__(self) -> int:
        return len(self._feeds)

    def end_streams(self) -> None:
        """End every open stream now, so a stopping server need not wait for browsers."""
        self.ending = True
        for feed in self._feeds.values():
            feed.end_streams()

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        key: Hashable,
        produce: Produce,
        channels: frozenset[str] = frozenset(),
        pause: float = DEBOUNCE,
    ) -> AsyncIterator[asyncio.Queue[Message]]:
        """A queue of the view's messages for as long as the ``async with`` lasts.

        The first subscriber of ``key`` opens its feed: ``produce`` renders the view,
        ``channels`` announce its changes, ``pause`` is the least time between refreshes.
        """
        async with self._lock:
            feed = self._feeds.get(key)
            if feed is None:
                feed = Feed(self.hub, produce, channels, pause)
                await feed.open()
                self._feeds[key] = feed
            queue = feed.subscribe()
            if self.ending:
                queue.put_nowait(END)
        try:
            yield queue
        finally:
            # A browser that goes away cancels its stream; the clean-up runs to its end.
            leaving = asyncio.ensure_future(self._leave(key, feed, queue))
            self._leaving.add(leaving)
            leaving.add_done_callback(self._leaving.discard)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(leaving)

    async def _leave(self, key: Hashable, feed: Feed, queue: asyncio.Queue[Message]) -> None:
        async with self._lock:
            feed.queues.discard(queue)
            if not feed.queues and self._feeds.get(key) is feed:
                del self._feeds[key]
                await feed.close()

    async def close(self) -> None:
        """Close every feed (the server is stopping)."""
        async with self._lock:
            feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.close()
