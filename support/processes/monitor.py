"""What a Processor asks of Redis, seen through ``MONITOR``: some settings are visible nowhere else.

``PROCESSOR_READ_BLOCK_MS`` is the ``BLOCK`` of each ``XREADGROUP`` and ``PROCESSOR_CLAIM_IDLE_MS`` the minimum idle
time of each ``XAUTOCLAIM`` (docs/processor.md, section 1); the consumer group and consumer name are in both. A watch
keeps the commands that name one key (a scenario's own stream) in one Redis database, from the moment it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.client import Monitor

from ..waiting import eventually

#: One command as the server received it: its name (upper case) and arguments.
Command = list[str]


class CommandWatch:
    """The commands naming ``key`` in database ``db`` that any client sends to the server of ``redis_url``."""

    def __init__(self, redis_url: str, key: str, db: int) -> None:
        self._client = aioredis.Redis.from_url(redis_url)
        self.key = key
        self.db = db
        self.commands: list[Command] = []
        self._task: asyncio.Task[None] | None = None
        self._monitor: Monitor | None = None

    async def start(self) -> None:
        """Begin watching; the commands sent from now on are kept."""
        self._monitor = self._client.monitor()
        await self._monitor.__aenter__()  # type: ignore[no-untyped-call]  # redis-py leaves Monitor's context methods unannotated
        self._task = asyncio.create_task(self._watch(self._monitor))

    async def _watch(self, monitor: Monitor) -> None:
        while True:
            seen = await monitor.next_command()
            words = seen["command"].split(" ")
            if seen["db"] == self.db and self.key in words[1:]:
                self.commands.append([words[0].upper(), *words[1:]])

    async def first(self, names: str | tuple[str, ...], matching: Callable[[Command], bool] = lambda _: True, *,
                    timeout: float, what: str) -> Command:
        """The first command called ``names`` (e.g. ``XREADGROUP``, or one of several) that satisfies ``matching``,
        waiting for it."""
        wanted = {names.upper()} if isinstance(names, str) else {name.upper() for name in names}

        async def seen() -> tuple[bool, Command | list[str]]:
            found = [c for c in self.commands if c[0] in wanted and matching(c)]
            return bool(found), found[0] if found else [" ".join(c) for c in self.commands[-5:]]

        command = await eventually(seen, timeout=timeout, what=what)
        assert isinstance(command, list)
        return command

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._monitor is not None:
            with contextlib.suppress(Exception):
                await self._monitor.__aexit__(None, None, None)  # type: ignore[no-untyped-call]  # as above
        await self._client.aclose()


def option(command: Command, name: str) -> str | None:
    """The value after option ``name`` (e.g. ``BLOCK``) in ``command``, if it has one."""
    upper = [word.upper() for word in command]
    if name.upper() not in upper:
        return None
    index = upper.index(name.upper())
    return command[index + 1] if index + 1 < len(command) else None
