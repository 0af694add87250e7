"""Replays every recorded question of real Directus against the suite's stand-in (``support/cms/directus_stub.py``,
started in-process) and fails on any difference in status or ``errors[0].extensions.code``.

The stand-in is the suite's picture of Directus: if it answers differently from the real thing, the suite
tests the Processor against a CMS that does not exist. ``SET_UP`` says, for each recorded case, which session
the question carries and how the stand-in is prepared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from support.cms.directus_stub import SESSION_COOKIE as SC
from support.cms.directus_stub import DirectusStub

from ..directus_recordings import EVENT_1, EVENT_2, SET_UP_ONLY, USER_A, USER_B, recorded_code, recordings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Cms:
    """A stand-in prepared as the recordings' Directus was: users A and B, events 1 and 2, and one token of
    each kind."""

    version: str
    clock: Clock = field(default_factory=Clock)
    stub: DirectusStub = field(init=False)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stub = stub = DirectusStub(clock=self.clock)
        stub.known_events |= {EVENT_1, EVENT_2}
        token = lambda cookie: cookie.split("=", 1)[1]  # noqa: E731
        self.tokens["rotated"] = token(stub.sign_in(USER_A))
        stub.rotate_secret()  # everything issued so far was signed with the old SECRET
        self.tokens["a"] = token(stub.sign_in(USER_A))
        self.tokens["b"] = token(stub.sign_in(USER_B))
        if self.version.startswith("12."):
            stub.grant_all(USER_A)  # 12 without a licence refuses filtered permissions: A reads every event
        else:
            stub.grant(USER_A, EVENT_1)
        self.tokens["admin"] = token(stub.sign_in("admin"))
        stub.grant_all("admin")
        logged_out = stub.sign_in(USER_A)
        stub.revoke(logged_out)
        self.tokens["logged_out"] = token(logged_out)
        expired = stub.sign_in(USER_A)
        stub.expire(expired)
        self.tokens["expired"] = token(expired)
        self.tokens["static"] = stub.static_token(USER_A)
        old = stub.sign_in(USER_A)
        self.tokens["refreshed_new"] = token(stub.refresh(old))
        self.tokens["refreshed_old"] = token(old)
        self.tokens["share"] = token(stub.share_session())
        self.tokens["garbage"] = "not-a-token-at-all"


def cookie(name: str) -> Callable[[Cms], dict[str, str]]:
    return lambda cms: {"Cookie": f"{SC}={cms.tokens[name]}"}


def bearer(name: str) -> Callable[[Cms], dict[str, str]]:
    return lambda cms: {"Authorization": f"Bearer {cms.tokens[name]}"}


def nothing(cms: Cms) -> dict[str, str]:
    return {}


def foo_bar(cms: Cms) -> dict[str, str]:
    return {"Cookie": "foo=bar"}


def after_grace(cms: Cms) -> dict[str, str]:
    cms.clock.now += 11  # the recorder waited 11 s; the stand-in's clock is moved instead
    return cookie("refreshed_old")(cms)


def rate_limited(cms: Cms) -> dict[str, str]:
    cms.stub.rate_limit(points=50, window=1.0)
    cms.stub.use_up_rate_limit()
    return cookie("a")(cms)


#: Recorded case -> the headers of the question (preparing the stand-in where the case needs more).
SET_UP: dict[str, Callable[[Cms], dict[str, str]]] = {
    "me: no Cookie header": nothing,
    "me: Cookie without the session cookie (foo=bar)": foo_bar,
    "me: garbage session cookie": cookie("garbage"),
    "me: JWT signed with another secret": cookie("rotated"),
    "me: logged-out session cookie": cookie("logged_out"),
    "me: expired session JWT": cookie("expired"),
    "me: valid cookie A": cookie("a"),
    "me: valid cookie B": cookie("b"),
    "me: A among other cookies": lambda cms: {"Cookie": f"theme=dark; {SC}={cms.tokens['a']}; lang=sq"},
    "me: garbage first, then A (duplicate name)":
        lambda cms: {"Cookie": f"{SC}={cms.tokens['garbage']}; {SC}={cms.tokens['a']}"},
    "me: A first, then garbage (duplicate name)":
        lambda cms: {"Cookie": f"{SC}={cms.tokens['a']}; {SC}={cms.tokens['garbage']}"},
    "me: A quoted value": lambda cms: {"Cookie": f'{SC}="{cms.tokens["a"]}"'},
    "me: Bearer session JWT of A (no cookie)": bearer("a"),
    "me: static token as Bearer": bearer("static"),
    "me: static token in the session cookie": cookie("static"),
    "me: Bearer garbage + valid cookie A": lambda cms: {**bearer("garbage")(cms), **cookie("a")(cms)},
    "me: ?access_token=garbage + cookie A": cookie("a"),
    "me: rotated-away cookie, within grace": cookie("refreshed_old"),
    "me: cookie after refresh (new)": cookie("refreshed_new"),
    "me: ?fields=id with cookie A": cookie("a"),
    "item: A, permitted event 1": cookie("a"),
    "item: A, forbidden event 2": cookie("a"),
    "item: A, non-existent uuid": cookie("a"),
    "item: A, non-uuid id 'abc'": cookie("a"),
    "item: A, numeric id '1'": cookie("a"),
    "item: B, event 1": cookie("b"),
    "item: B, event 2": cookie("b"),
    "item: B, non-existent uuid": cookie("b"),
    "item: no Cookie header, event 1": nothing,
    "item: Cookie without session cookie, event 1": foo_bar,
    "item: garbage cookie, event 1": cookie("garbage"),
    "item: JWT signed with another secret, event 1": cookie("rotated"),
    "item: logged-out cookie, event 1": cookie("logged_out"),
    "item: expired JWT, event 1": cookie("expired"),
    "item: A among other cookies, event 1": lambda cms: {"Cookie": f"theme=dark; {SC}={cms.tokens['a']}"},
    "item: A ?fields=id, event 1": cookie("a"),
    "item: admin Bearer, non-existent uuid": bearer("admin"),
    "item: admin Bearer, non-uuid 'abc'": bearer("admin"),
    "item: static token cookie (A), event 1": cookie("static"),
    "item: static token cookie (A), event 2": cookie("static"),
    "route: /items/nonexistent_collection/1 (A)": cookie("a"),
    "me: rotated-away cookie, after grace (11 s)": after_grace,
    "item: rotated-away cookie after grace, event 1": after_grace,
    # documented.json
    "me: share-link session (POST /shares/auth)": cookie("share"),
    "me: rate limiter tripped (RATE_LIMITER_POINTS=50, RATE_LIMITER_DURATION=1)": rate_limited,
    "item: rate limiter tripped, event 1": rate_limited,
    "item: share-link session, event 1 (share of another collection)": cookie("share"),
}

REPLAYED = [(version, entry) for version, entry in recordings() if entry["case"] not in SET_UP_ONLY]


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None
    retry_after: str | None


async def ask(version: str, case: str, path: str) -> Answer:
    cms = Cms(version)
    headers = SET_UP[case](cms)
    async with TestClient(TestServer(cms.stub.application())) as client:
        async with client.get(path, headers=headers) as response:
            body: Any = await response.json(content_type=None)
            code = None
            if response.status >= 400:
                code = body["errors"][0]["extensions"]["code"]
            return Answer(response.status, code, response.headers.get("Retry-After"))


def divergence(entry: dict[str, Any], answer: Answer) -> str | None:
    """How the stand-in's answer differs from the recorded one (None: it does not)."""
    expected = Answer(entry["status"], recorded_code(entry), entry.get("retry_after"))
    differences = [f"{what}: recorded {want!r}, stand-in {got!r}"
                   for what, want, got in zip(("status", "code", "Retry-After"), (expected.status, expected.code,
                                              expected.retry_after), (answer.status, answer.code,
                                                                      answer.retry_after), strict=False)
                   if (want != got if what != "Retry-After" else want is not None and want != got)]
    return "; ".join(differences) or None


def test_every_recorded_case_is_replayed_or_set_up() -> None:
    cases = {entry["case"] for _, entry in recordings()}
    assert cases - SET_UP_ONLY - set(SET_UP) == set(), "recorded cases the replay does not know how to ask"
    assert set(SET_UP) - cases == set(), "set-ups for cases nobody recorded"


@pytest.mark.parametrize("version, entry", REPLAYED, ids=[f"{v}: {e['case']}" for v, e in REPLAYED])
async def test_stand_in_answers_as_directus(version: str, entry: dict[str, Any]) -> None:
    answer = await ask(version, entry["case"], entry["path"])
    assert divergence(entry, answer) is None, divergence(entry, answer)


@pytest.mark.parametrize("change", [{"status": 401}, {"status": 404}, {"code": "FORBIDDEN"}, {"code": "INVALID_TOKEN"}])
async def test_the_replay_notices_a_changed_recording(change: dict[str, Any]) -> None:
    """The comparison is not vacuous: a recorded answer with another status or code is a divergence."""
    version, entry = next((v, e) for v, e in REPLAYED if e["case"] == "me: JWT signed with another secret")
    answer = await ask(version, entry["case"], entry["path"])
    assert divergence(entry, answer) is None
    changed = dict(entry)
    if "status" in change:
        changed["status"] = change["status"]
    else:
        changed["body"] = entry["body"].replace("INVALID_TOKEN", change["code"]) if change["code"] != "INVALID_TOKEN" \
            else entry["body"].replace("INVALID_TOKEN", "INVALID_CREDENTIALS")
    assert divergence(changed, answer) is not None
