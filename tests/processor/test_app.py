"""The service's wiring (processor.app): its Redis client gives up on a silent Redis at ``PROCESSOR_REDIS_TIMEOUT``,
once, so ``/healthz`` reports the consumer stopped "at the latest after PROCESSOR_REDIS_TIMEOUT" (docs/processor.md
section 2) rather than after a retry that waits as long again."""

import asyncio

import pytest
import redis.exceptions

from processor.app import App
from processor.config import load

BASE = {
    "PROCESSOR_DATABASE_URL": "postgresql://user@127.0.0.1:5432/live",
    "PROCESSOR_DIRECTUS_URL": "https://cms.example.com/",
    "PROCESSOR_READ_BLOCK_MS": "100",
}
TIMEOUT = 0.5


async def test_a_command_to_a_silent_redis_fails_once_at_the_socket_timeout():
    held: list[asyncio.StreamWriter] = []

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, never answered: a frozen Redis

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = App(load({**BASE, "PROCESSOR_REDIS_URL": f"redis://127.0.0.1:{port}/0",
                    "PROCESSOR_REDIS_TIMEOUT": str(TIMEOUT)}))
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            await app.redis.ping()
        elapsed = loop.time() - began
    finally:
        await app.redis.aclose()
        for writer in held:
            writer.close()
        server.close()
    assert TIMEOUT <= elapsed < 1.8 * TIMEOUT  # once, not twice (a retry on a timeout waits as long again)
