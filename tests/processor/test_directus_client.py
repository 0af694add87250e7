"""The Directus client (processor.directus) reads every recorded answer of real Directus right (status +
``extensions.code`` -> outcome), retries a 429 once within its budget, paces itself while Directus limits it, and
shares identical checks in flight, all through its HTTP seam (a transport callable), without patching anything:
every viewer's upgrade and subscribe depends on reading these answers right."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import pytest

from processor.directus import Directus, Outcome, Reply, TransportError, classify

from ..directus_recordings import EVENT_1, SET_UP_ONLY, recorded_code, recordings

O = Outcome  # noqa: E741 -- a one-letter alias keeps the 68-row table below readable
#: Recorded case -> what the Processor makes of that answer (a pair when Directus 11 and 12 differ:
#: Directus 12 without a licence cannot express per-organisation access, so user A reads every event).
EXPECTED: dict[str, Any] = {
    "me: no Cookie header": O.UNAUTHORIZED,
    "me: Cookie without the session cookie (foo=bar)": O.UNAUTHORIZED,
    "me: garbage session cookie": O.UNAUTHORIZED,
    "me: JWT signed with another secret": O.UNAUTHORIZED,
    "me: logged-out session cookie": O.UNAUTHORIZED,
    "me: expired session JWT": O.UNAUTHORIZED,
    "me: valid cookie A": O.OK,
    "me: valid cookie B": O.OK,
    "me: A among other cookies": O.OK,
    "me: garbage first, then A (duplicate name)": O.UNAUTHORIZED,
    "me: A first, then garbage (duplicate name)": O.OK,
    "me: A quoted value": O.OK,
    "me: Bearer session JWT of A (no cookie)": O.OK,
    "me: static token as Bearer": O.OK,
    "me: static token in the session cookie": O.OK,
    "me: Bearer garbage + valid cookie A": O.UNAUTHORIZED,
    "me: ?access_token=garbage + cookie A": O.UNAUTHORIZED,
    "me: rotated-away cookie, within grace": O.OK,
    "me: cookie after refresh (new)": O.OK,
    "me: ?fields=id with cookie A": O.OK,
    "me: rotated-away cookie, after grace (11 s)": O.UNAUTHORIZED,
    "me: share-link session (POST /shares/auth)": O.SHARE,
    "me: rate limiter tripped (RATE_LIMITER_POINTS=50, RATE_LIMITER_DURATION=1)": O.RATE_LIMITED,
    "item: A, permitted event 1": O.OK,
    "item: A, forbidden event 2": {"11.17.4": O.FORBIDDEN, "12.4.0": O.OK},
    "item: A, non-existent uuid": O.FORBIDDEN,
    "item: A, non-uuid id 'abc'": O.FORBIDDEN,
    "item: A, numeric id '1'": O.FORBIDDEN,
    "item: B, event 1": O.FORBIDDEN,
    "item: B, event 2": O.FORBIDDEN,
    "item: B, non-existent uuid": O.FORBIDDEN,
    "item: no Cookie header, event 1": O.FORBIDDEN,
    "item: Cookie without session cookie, event 1": O.FORBIDDEN,
    "item: garbage cookie, event 1": O.UNAUTHORIZED,
    "item: JWT signed with another secret, event 1": O.UNAUTHORIZED,
    "item: logged-out cookie, event 1": O.UNAUTHORIZED,
    "item: expired JWT, event 1": O.UNAUTHORIZED,
    "item: A among other cookies, event 1": O.OK,
    "item: A ?fields=id, event 1": O.OK,
    "item: admin Bearer, non-existent uuid": O.FORBIDDEN,
    "item: admin Bearer, non-uuid 'abc'": O.FORBIDDEN,
    "item: static token cookie (A), event 1": O.OK,
    "item: static token cookie (A), event 2": {"11.17.4": O.FORBIDDEN, "12.4.0": O.OK},
    "item: rotated-away cookie after grace, event 1": O.UNAUTHORIZED,
    "item: rate limiter tripped, event 1": O.RATE_LIMITED,
    "item: share-link session, event 1 (share of another collection)": O.FORBIDDEN,
}

ASKED = [(v, e) for v, e in recordings() if e["case"] not in SET_UP_ONLY and e["path"].startswith(("/users/me",
                                                                                                   "/items/events/"))]


def as_reply(entry: dict[str, Any]) -> Reply:
    """The recorded answer as the transport would return it. A body the recorder trimmed is rebuilt whole
    around its recorded message and code (real Directus sends it whole)."""
    body = entry["body"]
    try:
        json.loads(body)
    except ValueError:
        message = json.loads(body.split(',"extensions"')[0] + "}]}")["errors"][0]["message"]
        body = json.dumps({"errors": [{"message": message, "extensions": {"code": recorded_code(entry)}}]})
    headers = {"Retry-After": entry["retry_after"]} if "retry_after" in entry else {}
    return Reply(entry["status"], body.encode(), headers)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Script:
    """A transport answering from a list (the last answer repeats); counts what it was asked."""

    def __init__(self, *replies: Reply | Exception, gate: asyncio.Event | None = None) -> None:
        self.replies = list(replies)
        self.asked: list[tuple[str, str]] = []
        self.gate = gate

    async def __call__(self, path: str, headers: Mapping[str, str], timeout: float) -> Reply:
        self.asked.append((path, headers["Cookie"]))
        if self.gate is not None:
            await self.gate.wait()
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


def client(*replies: Reply | Exception, timeout: float = 2.0, gate: asyncio.Event | None = None
           ) -> tuple[Directus, Script, Clock]:
    clock, script = Clock(), Script(*replies, gate=gate)
    return Directus("http://cms.invalid", timeout, script, clock=clock, sleep=clock.sleep), script, clock


def expected(version: str, case: str) -> Outcome:
    want = EXPECTED[case]
    return want[version] if isinstance(want, dict) else want


def test_every_question_the_processor_asks_has_an_expected_outcome() -> None:
    assert {e["case"] for _, e in ASKED} == set(EXPECTED)


@pytest.mark.parametrize("version, entry", ASKED, ids=[f"{v}: {e['case']}" for v, e in ASKED])
async def test_recorded_answer_maps_to_outcome(version: str, entry: dict[str, Any]) -> None:
    directus, script, _ = client(as_reply(entry))
    if entry["path"].startswith("/users/me"):
        outcome, user = await directus.current_user("directus_session_token=x")
        assert (outcome, user is not None) == (expected(version, entry["case"]), outcome is Outcome.OK)
    else:
        assert await directus.may_watch("directus_session_token=x", EVENT_1) is expected(version, entry["case"])
    assert len(script.asked) == (2 if entry["status"] == 429 else 1)  # a 429 is retried once, nothing else


@pytest.mark.parametrize("kind, status, body, outcome", [
    ("me", 200, b'{"data":{}}', O.UNAVAILABLE),  # signed in as nobody, and no share either
    ("me", 200, b'{"data":{"id":null,"share":null}}', O.UNAVAILABLE),
    ("me", 200, b"not json", O.UNAVAILABLE),
    ("me", 503, b"", O.UNAVAILABLE),
    ("item", 500, b'{"errors":[{"message":"x","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}', O.UNAVAILABLE),
    ("item", 403, b"", O.UNAVAILABLE),  # only FORBIDDEN means forbidden
    ("item", 403, b'{"errors":[{"message":"x","extensions":{"code":"RESOURCE_RESTRICTED"}}]}', O.UNAVAILABLE),
    ("item", 404, b'{"errors":[{"message":"x","extensions":{"code":"ROUTE_NOT_FOUND"}}]}', O.NOT_FOUND),
    ("me", 404, b"", O.UNAVAILABLE),
    ("item", 401, b"", O.UNAUTHORIZED),
    # a plain refusal of "who is this?" (a proxy or an auth extension in front of Directus): sign in
    ("me", 401, b"401 Unauthorized", O.UNAUTHORIZED),
    ("me", 403, b"403 Forbidden", O.UNAUTHORIZED),
    ("me", 403, b"", O.UNAUTHORIZED),
    ("me", 403, b'{"errors":[{"message":"Forbidden"}]}', O.UNAUTHORIZED),  # an error object without a code
    ("me", 403, b'{"errors":[{"message":"x","extensions":{"code":"FORBIDDEN"}}]}', O.UNAUTHORIZED),
    ("me", 403, b'{"errors":[{"message":"x","extensions":{"code":"RESOURCE_RESTRICTED"}}]}', O.UNAVAILABLE),
])
def test_answers_no_recording_holds(kind: str, status: int, body: bytes, outcome: Outcome) -> None:
    assert classify(kind, Reply(status, body))[0] is outcome


LIMITED = Reply(429, b'{"errors":[{"message":"Too many","extensions":{"limit":2,"code":"REQUESTS_EXCEEDED"}}]}',
                {"Retry-After": "1"})
ME_A = Reply(200, b'{"data":{"id":"a"}}')
ITEM = Reply(200, b'{"data":{"id":"e"}}')


async def test_a_429_is_retried_once_after_its_back_off() -> None:
    directus, script, clock = client(LIMITED, ME_A)
    assert await directus.current_user("c=1") == (O.OK, "a")
    assert len(script.asked) == 2 and clock.slept == [1.0]


async def test_a_429_past_the_budget_is_not_retried() -> None:
    late = Reply(429, LIMITED.body, {"Retry-After": "5"})
    directus, script, clock = client(late, ME_A)
    assert await directus.current_user("c=1") == (O.RATE_LIMITED, None)
    assert len(script.asked) == 1 and clock.slept == []
    assert directus.retry_after == 5  # what a refused viewer is told


async def test_a_zero_retry_after_still_backs_off_a_little() -> None:
    zero = Reply(429, LIMITED.body, {"Retry-After": "0"})
    directus, _script, clock = client(zero, ITEM)
    assert await directus.may_watch("c=1", EVENT_1) is O.OK
    assert 0 < clock.slept[0] < 1


async def test_while_limited_checks_wait_then_go_out_paced() -> None:
    """After a 429 naming a limit of 2: nothing is asked until Retry-After, then 2 requests and one probe."""
    directus, script, clock = client(LIMITED, ITEM)
    first = await directus.may_watch("c=0", EVENT_1)  # 429, back-off 1 s, retry: OK (limit learned)
    assert first is O.OK and len(script.asked) == 2
    script.replies = [ITEM, ITEM, LIMITED, ITEM]
    results = list(await asyncio.gather(*(directus.may_watch(f"c={i}", EVENT_1) for i in range(1, 4))))
    assert results == [O.OK, O.OK, O.OK]
    # 2 for the first check (its retry was the probe that opened a new window of 2); then 1 within that
    # window, 1 probe (a new window), and a 429 for the third, whose retry (a probe after the hold) gets through
    assert len(script.asked) == 6 and clock.now >= 102


async def test_after_a_hold_one_probe_goes_out_alone() -> None:
    """Retry-After is rounded to whole seconds, so the window may not have ended when it says: the first
    request after a hold goes out alone, and the others wait for its answer instead of all meeting a 429."""
    directus, script, _clock = client(LIMITED)
    assert await directus.may_watch("c=0", EVENT_1) is O.RATE_LIMITED  # a 429, and the retry's 429
    script.gate = asyncio.Event()
    script.replies = [ITEM]
    checks = [asyncio.ensure_future(directus.may_watch(f"c={i}", EVENT_1)) for i in range(1, 4)]
    for _ in range(10):
        await asyncio.sleep(0)
    in_flight = len(script.asked)
    script.gate.set()
    results, asked = list(await asyncio.gather(*checks)), len(script.asked)
    assert results == [O.OK] * 3
    assert in_flight == 3  # 2 for the first check, then the probe alone
    assert asked == 5  # the probe opened a window of 2: one more, then the next probe


async def test_refused_without_asking_while_the_limit_outlasts_the_budget() -> None:
    late = Reply(429, LIMITED.body, {"Retry-After": "30"})
    directus, script, _ = client(late, ITEM)
    results = await directus.may_watch("c=1", EVENT_1), await directus.may_watch("c=2", EVENT_1)
    assert results == (O.RATE_LIMITED, O.RATE_LIMITED)
    assert len(script.asked) == 1  # the second check did not cost Directus a request


async def test_unreachable_is_unavailable() -> None:
    directus, _, _ = client(TransportError("connection refused"))
    assert await directus.current_user("c=1") == (O.UNAVAILABLE, None)


async def test_identical_checks_in_flight_share_one_request() -> None:
    gate = asyncio.Event()
    directus, script, _ = client(ITEM, gate=gate)
    checks = [asyncio.ensure_future(directus.may_watch("c=alice", EVENT_1)) for _ in range(5)]
    checks.append(asyncio.ensure_future(directus.may_watch("c=bob", EVENT_1)))  # another session
    checks.append(asyncio.ensure_future(directus.current_user("c=alice")))  # type: ignore[arg-type]  # another question; the list mixes both questions' futures on purpose
    await asyncio.sleep(0)
    gate.set()
    results: list[Any] = list(await asyncio.gather(*checks))
    assert results[:6] == [O.OK] * 6
    assert sorted(script.asked) == sorted([(f"/items/events/{EVENT_1}", "c=alice"), (f"/items/events/{EVENT_1}",
                                                                                     "c=bob"),
                                           ("/users/me", "c=alice")])


async def test_no_answer_outlives_its_request() -> None:
    """Coalescing is not caching: the same check asked again later asks Directus again."""
    directus, script, _ = client(ITEM, Reply(403, b'{"errors":[{"message":"x","extensions":{"code":"FORBIDDEN"}}]}'))
    results = await directus.may_watch("c=1", EVENT_1), await directus.may_watch("c=1", EVENT_1)
    assert results == (O.OK, O.FORBIDDEN)
    assert len(script.asked) == 2


async def test_a_waiter_leaving_does_not_cancel_the_shared_request() -> None:
    gate = asyncio.Event()
    directus, _, _ = client(ITEM, gate=gate)
    leaving = asyncio.ensure_future(directus.may_watch("c=1", EVENT_1))
    staying = asyncio.ensure_future(directus.may_watch("c=1", EVENT_1))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    assert await staying is O.OK


@pytest.mark.parametrize("said, reset_in, hold", [
    ("1", 0.62, 0.62),  # reset believed within Retry-After's rounding
    ("0", 0.3, 0.3),
    ("0", 0.01, 0.1),  # never less than the minimal back-off
    ("1", 30.0, 1.5),  # a clock far off is not believed beyond the rounding
    ("1", -5.0, 0.5),
    ("1", None, 1.0),  # no reset: Retry-After as said
])
def test_hold_after_a_429(said: str, reset_in: float | None, hold: float) -> None:
    from datetime import datetime

    from processor.directus import RatePacer

    pacer = RatePacer(clock=lambda: 0.0)
    pacer.wall = lambda: 1_800_000_000.0
    extensions: dict[str, Any] = {"limit": 50, "code": "REQUESTS_EXCEEDED"}
    if reset_in is not None:
        extensions["reset"] = datetime.fromtimestamp(1_800_000_000.0 + reset_in, UTC).isoformat()
    reply = Reply(429, json.dumps({"errors": [{"message": "x", "extensions": extensions}]}).encode(),
                  {"Retry-After": said})
    assert pacer._hold(reply) == pytest.approx(hold)
