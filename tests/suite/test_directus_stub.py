"""The Directus stand-in's own promises beyond the recordings: modes are undone per scenario, paths are
recorded without their query, and 404s for unknown events only when asked for."""

from __future__ import annotations

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
