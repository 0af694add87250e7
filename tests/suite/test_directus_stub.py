"""The Directus stand-in's own promises beyond the recordings: modes are undone per scenario, paths are
recorded without their query, 404s for unknown events only when asked for, and the modes that play what stands
around Directus (plain refusals, a licence-locked CMS, a slow one, one that is not running) answer as the
Processor's contract expects them to be read."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from processor.directus import Outcome, Reply, classify
from support.cms.directus_stub import DirectusStub

from ..directus_recordings import EVENT_1, USER_A

UNKNOWN = "99999999-9999-4999-8999-999999999999"


async def get(stub: DirectusStub, path: str, cookie: str) -> tuple[int, bytes]:
    async with TestClient(TestServer(stub.application())) as client:
        async with client.get(path, headers={"Cookie": cookie}) as response:
            return response.status, await response.read()


async def test_unknown_events_are_404_only_when_configured() -> None:
    stub = DirectusStub()
    stub.known_events.add(EVENT_1)
    cookie = stub.sign_in(USER_A)
    stub.grant(USER_A, EVENT_1)
    status, body = await get(stub, f"/items/events/{UNKNOWN}", cookie)
    assert status == 403 and classify("item", Reply(status, body))[0] is Outcome.FORBIDDEN
    stub.unknown_events_404 = True
    status, body = await get(stub, f"/items/events/{UNKNOWN}", cookie)
    assert status == 404 and classify("item", Reply(status, body))[0] is Outcome.NOT_FOUND
    assert (await get(stub, f"/items/events/{EVENT_1}", cookie))[0] == 200


async def test_paths_are_recorded_without_their_query() -> None:
    stub = DirectusStub()
    stub.known_events.add(EVENT_1)
    cookie = stub.sign_in(USER_A)
    stub.grant(USER_A, EVENT_1)
    await get(stub, f"/items/events/{EVENT_1}?fields=id", cookie)
    seen = stub.requests[-1]
    assert (seen.path, seen.query, seen.status) == (f"/items/events/{EVENT_1}", "fields=id", 200)


async def test_reset_modes_undoes_every_mode() -> None:
    stub = DirectusStub()
    stub.known_events.add(EVENT_1)
    stub.grant(USER_A, EVENT_1)
    cookie = stub.sign_in(USER_A)
    stub.rotate_secret()
    stub.rate_limit(points=1, window=None)
    stub.use_up_rate_limit()
    stub.go_down("503")
    stub.unknown_events_404 = True
    assert (await get(stub, "/users/me", cookie))[0] == 429
    stub.reset_modes()
    assert (await get(stub, "/users/me", cookie))[0] == 200  # the secret is as it was: the old session works
    assert (await get(stub, f"/items/events/{UNKNOWN}", cookie))[0] == 403


async def test_forget_removes_every_kind_of_session() -> None:
    stub = DirectusStub()
    cookies = [stub.sign_in(USER_A), stub.share_session(), stub.sign_in_nameless()]
    stub.expire(cookies[0])
    stub.forget(cookies=cookies, users=[USER_A], events=[])
    for cookie in cookies:
        assert (await get(stub, "/users/me", cookie))[0] == 401


async def test_plain_refusals_carry_no_error_code() -> None:
    stub = DirectusStub()
    for status, code, outcome in ((401, None, Outcome.UNAUTHORIZED), (403, None, Outcome.UNAUTHORIZED),
                                  (403, "FORBIDDEN", Outcome.UNAUTHORIZED)):
        cookie = stub.sign_in_refused(status, code)
        got, body = await get(stub, "/users/me", cookie)
        assert got == status and classify("me", Reply(got, body))[0] is outcome
        assert stub.requests[-1].code == code
        if code is None:
            assert b"errors" not in body  # a proxy's answer, not a Directus error object
    stub.forget(cookies=[cookie], users=[], events=[])
    assert (await get(stub, "/users/me", cookie))[0] == 401  # forgotten: an unknown session again


async def test_a_licence_locked_cms_answers_resource_restricted_and_it_is_an_outage() -> None:
    stub = DirectusStub()
    stub.known_events.add(EVENT_1)
    stub.grant(USER_A, EVENT_1)
    cookie = stub.sign_in(USER_A)
    stub.go_down("restricted")
    status, body = await get(stub, f"/items/events/{EVENT_1}", cookie)
    assert status == 403 and classify("item", Reply(status, body))[0] is Outcome.UNAVAILABLE
    status, body = await get(stub, "/users/me", cookie)
    assert status == 403 and classify("me", Reply(status, body))[0] is Outcome.UNAVAILABLE
    stub.reset_modes()
    assert (await get(stub, f"/items/events/{EVENT_1}", cookie))[0] == 200


async def test_a_slow_cms_records_how_many_requests_were_open_and_in_which_window() -> None:
    stub = DirectusStub()
    stub.delay = 0.05
    stub.rate_limit(points=2, window=60.0)
    cookies = [stub.sign_in(USER_A) for _ in range(3)]
    async with TestClient(TestServer(stub.application())) as client:

        async def ask(cookie: str) -> int:
            async with client.get("/users/me", headers={"Cookie": cookie}) as response:
                return response.status

        statuses = await asyncio.gather(*(ask(cookie) for cookie in cookies))
    assert sorted(statuses) == [200, 200, 429]
    assert stub.open_at_most() == 3 and {seen.window for seen in stub.requests} == {1}
    stub.reset_modes()
    assert stub.delay == 0 and stub.rate is None


async def test_a_cms_that_stops_running_comes_back_on_the_same_port() -> None:
    stub = DirectusStub()
    cookie = stub.sign_in(USER_A)
    await stub.start()
    port = stub.port
    try:
        await stub.stop_listening()
        assert not stub.listening
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(f"{stub.url}/users/me", headers={"Cookie": cookie})
            await stub.start()
            assert stub.port == port
            async with session.get(f"{stub.url}/users/me", headers={"Cookie": cookie}) as response:
                assert response.status == 200
    finally:
        await stub.close()
