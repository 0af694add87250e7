"""A link to Redis the suite can trouble on purpose: a TCP relay between one Processor instance and Redis.

Some contract rules are about what an instance does when its link to Redis misbehaves: the live channel's
messages arrive late (section 5, "Falling behind"), the channel subscription is lost (section 5, "Gaps"), the
round trip that publishes a stored batch and acknowledges it fails after the commit (section 5, "Broadcast"), Redis
stops answering (section 2, ``/healthz``). The relay makes each of these happen to one instance, when the scenario
says, without touching Redis itself (so it works on every lane, and the run's other Processors see nothing):

* :meth:`RedisLink.hold_channel` keeps back what Redis sends on the connections that subscribed to a channel (the
  live channel's messages) until :meth:`RedisLink.release_channel`;
* :meth:`RedisLink.drop_channel` cuts those connections: the instance must subscribe again;
* :meth:`RedisLink.lose_publishes` cuts every connection that sends a ``PUBLISH``, before it reaches Redis (with
  whatever else that write carried, the batch's ``XACK`` among it), until :meth:`RedisLink.keep_publishes`: a retry
  of the same round trip on a new connection is lost too;
* :meth:`RedisLink.go_silent` stops relaying anything either way, like a frozen Redis, until :meth:`speak_again`.

Commands are recognised in the client's bytes by their RESP name (``$7\\r\\nPUBLISH\\r\\n``, case-insensitive), which
is how every Redis client sends them.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from .relay import CHUNK, Connection, Relay

#: How Redis clients name the commands the relay watches for (RESP bulk strings).
PUBLISH = re.compile(rb"\$7\r\npublish\r\n", re.IGNORECASE)
SUBSCRIBE = re.compile(rb"\$(9\r\n|10\r\n[ps])subscribe\r\n", re.IGNORECASE)
#: Bytes of the previous chunk kept to find a command name split between two reads.
OVERLAP = 16


@dataclass(eq=False)
class _Relayed(Connection):
    """One relayed connection, and whether the client subscribed to a channel on it."""

    subscribed: bool = False


class RedisLink(Relay[_Relayed]):
    """Listens on a free loopback port and relays each connection to ``upstream_url``'s host and port."""

    default_port = 6379

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._channel_flowing = asyncio.Event()
        self._channel_flowing.set()
        self._speaking = asyncio.Event()
        self._speaking.set()
        self._lose_publish = False
        #: Set once a ``PUBLISH`` was lost on purpose (:meth:`lose_publishes`).
        self.publish_lost = asyncio.Event()
        #: How many channel subscriptions were cut (:meth:`drop_channel`).
        self.dropped = 0

    @property
    def channel_subscribers(self) -> int:
        """How many relayed connections subscribed to a channel and are still open."""
        return sum(1 for relayed in self._relaying if relayed.subscribed)

    # -- troubles --------------------------------------------------------------------------------------

    def hold_channel(self) -> None:
        """From now on, keep back what Redis sends to subscribed connections (their channel messages)."""
        self._channel_flowing.clear()

    def release_channel(self) -> None:
        """Pass on what was kept back, in order, and everything after it; idempotent."""
        self._channel_flowing.set()

    def drop_channel(self) -> int:
        """Cut every connection that subscribed to a channel (the instance loses its subscription); return how
        many were cut."""
        cut = [relayed for relayed in self._relaying if relayed.subscribed]
        for relayed in cut:
            relayed.cut()
        self.dropped += len(cut)
        return len(cut)

    def lose_publishes(self) -> None:
        """From now on cut every connection that sends a ``PUBLISH``, that write unsent (see :attr:`publish_lost`)."""
        self.publish_lost.clear()
        self._lose_publish = True

    def keep_publishes(self) -> None:
        """Relay ``PUBLISH`` again; idempotent."""
        self._lose_publish = False

    def go_silent(self) -> None:
        """Relay nothing either way from now on: to the instance, Redis has frozen (its connections stay open)."""
        self._speaking.clear()

    def speak_again(self) -> None:
        """Relay again, what was held first; idempotent."""
        self._speaking.set()

    async def close(self) -> None:
        """Stop listening and cut every relayed connection (what was held is let go first)."""
        self.release_channel()
        self.speak_again()
        await super().close()

    # -- relaying --------------------------------------------------------------------------------------

    def _connection(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> _Relayed:
        return _Relayed(client, server)

    async def _requests(self, reader: asyncio.StreamReader, relayed: _Relayed) -> None:
        """Client to server: notes subscriptions; loses a ``PUBLISH`` when asked to; waits while silent."""
        tail = b""
        while data := await reader.read(CHUNK):
            seen = tail + data
            tail = seen[-OVERLAP:]
            if not relayed.subscribed and SUBSCRIBE.search(seen):
                relayed.subscribed = True
            if self._lose_publish and PUBLISH.search(seen):
                self.publish_lost.set()
                return  # the connection is cut with this write unsent
            await self._speaking.wait()
            relayed.server.write(data)
            await relayed.server.drain()

    async def _answers(self, reader: asyncio.StreamReader, relayed: _Relayed) -> None:
        """Server to client: held while silent, and on a subscribed connection while the channel is held."""
        while data := await reader.read(CHUNK):
            await self._speaking.wait()
            if relayed.subscribed:
                await self._channel_flowing.wait()
            relayed.client.write(data)
            await relayed.client.drain()
