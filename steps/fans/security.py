"""Hostile and careless clients: no session, foreign sites, malformed or huge messages, floods, revoked
sessions, and the secrecy of session cookies in the Processor's logs."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field

from behave import given, then, when
from hamcrest import assert_that, equal_to, has_entries, none

from support.clock import ANSWER
from support.cms.directus_stub import SESSION_COOKIE, session_of
from support.fans.matchers import an_error, assert_refused
from support.fans.viewer import Frame, Viewer
from support.processes.refusal_count import count_from_now
from support.processes.slow_link import SlowLink
from support.scenario.gherkin import StepContext

#: The largest message the Processor accepts by default (docs/processor.md: PROCESSOR_MAX_FRAME_BYTES).
MAX_MESSAGE_BYTES = 64 * 1024


def sized_request(size: int) -> str:
    """A request to follow an event whose id is not one, exactly ``size`` bytes long (ASCII)."""
    bare = json.dumps({"type": "subscribe", "eventId": ""})
    assert size >= len(bare), f"no request is as short as {size} bytes"
    return json.dumps({"type": "subscribe", "eventId": "x" * (size - len(bare))})


#: The malformed messages of the feature file, by the name it gives them.
MALFORMED: dict[str, str | bytes] = {
    "text that is not JSON": "{subscribe: yes",
    "a list instead of an object": json.dumps([{"type": "subscribe",
                                                "eventId": "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"}]),
    "a message of an unknown type": json.dumps({"type": "watch", "eventId": "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"}),
    "a request to follow with no event": json.dumps({"type": "subscribe"}),
    # a well-formed request, sent as binary: an implementation that decoded binary messages would follow it
    "a message that is not text": json.dumps({"type": "subscribe",
                                              "eventId": "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"}).encode(),
    "a message of the largest size the live map accepts": sized_request(MAX_MESSAGE_BYTES),
}

#: Hostile event ids: each must be refused before the CMS or the database is asked about it.
HOSTILE_IDS = {
    "written like an SQL injection": "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a'; DROP TABLE positions; --",
    "pointing at another CMS path": "../users/me",
    "far longer than any real event id": "a" * 10_240,  # 10 KB
    # ARABIC-INDIC and FULLWIDTH digits: "digits" to Unicode-aware matching, not to the UUID grammar
    "written with look-alike digits": "\u0667f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5\uff15",
}

#: WebSocket close codes the fans experience (docs/processor.md, "Close codes").
CLOSE_TOO_LARGE = 1009
CLOSE_SESSION_ENDED = 1008


@dataclass
class Hostile:
    """What these steps remember: the error a message got, a flood sent, the cookies made up for visitors."""

    answer: Frame | None = None
    #: What the CMS was asked between a message being sent and its answer arriving.
    cms_meanwhile: list[str] = field(default_factory=list)
    #: The hostile event id sent, if any.
    hostile_id: str | None = None
    #: (inbox length before the flood, requests sent, the event ids asked about)
    flood: tuple[int, int, frozenset[str]] | None = None
    made_up_cookies: list[str] = field(default_factory=list)


def _hostile(context: StepContext) -> Hostile:
    return context.world.state(Hostile, Hostile)


def _made_up_cookie() -> str:
    return f"{SESSION_COOKIE}={secrets.token_urlsafe(24)}"


def _cookies_seen(context: StepContext) -> list[str]:
    cookies = _hostile(context).made_up_cookies
    return [*cookies, *(p.cookie for p in context.world.people.values() if p.cookie)]


# -- the upgrade -------------------------------------------------------------------------------------------

def _connect_visitor_with(context: StepContext, cookie: str) -> Viewer:
    _hostile(context).made_up_cookies.append(cookie)
    viewer = Viewer("the fan", cookie)
    context.world.viewers["the fan"] = viewer
    context.suite.run(count_from_now(context.world))
    context.suite.run(viewer.connect(context.suite.processor.live_url))
    return viewer


def _connect_visitor_with_made_up_cookie(context: StepContext) -> Viewer:
    return _connect_visitor_with(context, _made_up_cookie())


@when("a fan with a made-up session cookie connects to the live map")
def step_made_up_cookie(context: StepContext) -> None:
    _connect_visitor_with_made_up_cookie(context)


@when("a fan with a session the CMS will not describe connects to the live map")
def step_forbidden_me(context: StepContext) -> None:
    """``/users/me`` answers 403 ``FORBIDDEN`` for this session: a dead session, not an outage."""
    _connect_visitor_with(context, context.suite.stub.sign_in_forbidden())


@given("a fan with a made-up session cookie has been turned away")
def step_made_up_cookie_refused(context: StepContext) -> None:
    viewer = _connect_visitor_with_made_up_cookie(context)
    assert_refused(viewer, 401)


@when('{person}\'s browser connects to the live map from the web site "{origin:Site}"')
def step_foreign_origin(context: StepContext, person: str, origin: str) -> None:
    context.world.stub_mark = len(context.suite.stub.requests)
    context.suite.run(count_from_now(context.world))
    context.suite.run(context.world.connect(person, origin=origin))


@given('{person} has been turned away when connecting to the live map from the web site "{origin:Site}"')
def step_foreign_origin_refused(context: StepContext, person: str, origin: str) -> None:
    viewer = context.suite.run(context.world.connect(person, origin=origin))
    assert_refused(viewer, 403)


@then("{person} is turned away as coming from a foreign web site")
def step_refused_origin(context: StepContext, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_refused(viewer, 403)


@then("the CMS was not asked about {person}")
def step_cms_not_asked_about(context: StepContext, person: str) -> None:
    token = session_of(context.world.person(person).cookie or "")
    seen = [str(r) for r in context.suite.stub.requests_since(context.world.stub_mark) if r.session == token]
    assert_that(seen, equal_to([]))


# -- messages ----------------------------------------------------------------------------------------------

@given("{person} is connected to the live map")
def step_channel_open(context: StepContext, person: str) -> None:
    viewer = context.suite.run(context.world.connect(person))
    assert_that(viewer.refusal, none(), f"{person}'s connection was refused")
    context.world.stub_mark = len(context.suite.stub.requests)  # what the CMS is asked from here on


def _send_and_await_error(context: StepContext, person: str, message: str | bytes) -> None:
    viewer = context.world.viewer(person)
    already = len(viewer.inbox)
    asked = len(context.suite.stub.requests)
    context.suite.run(viewer.send(message))
    hostile = _hostile(context)
    hostile.answer = context.suite.run(viewer.wait_for(lambda f: f.get("type") == "error", timeout=ANSWER,
                                                       what="an error", since=already))
    hostile.cms_meanwhile = [str(r) for r in context.suite.stub.requests_since(asked)]


@when('{person} sends the malformed message "{message}"')
def step_send_malformed(context: StepContext, person: str, message: str) -> None:
    assert message in MALFORMED, f"no malformed message called {message!r} (known: {list(MALFORMED)})"
    _send_and_await_error(context, person, MALFORMED[message])


@when("{person} asks to follow the event {kind}")
def step_hostile_id(context: StepContext, person: str, kind: str) -> None:
    assert kind in HOSTILE_IDS, f"no hostile id called {kind!r} (known: {list(HOSTILE_IDS)})"
    _hostile(context).hostile_id = HOSTILE_IDS[kind]
    _send_and_await_error(context, person, json.dumps({"type": "subscribe", "eventId": HOSTILE_IDS[kind]}))


@then("{person} is told the message was malformed")
def step_told_malformed(context: StepContext, person: str) -> None:
    """``bad_request``, with a message a person can read (docs/processor.md, section 4, "Frames")."""
    answer = _hostile(context).answer
    assert_that(answer, an_error("bad_request"))
    assert answer is not None
    message = answer.get("message")
    assert_that(isinstance(message, str) and bool(message.strip()), equal_to(True),
                f"the error carries no readable message: {answer}")


@then('{person} can still open the live map of the "{event}"')
def step_still_usable(context: StepContext, person: str, event: str) -> None:
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event} afterwards")


@then('the CMS was asked about no event but the "{event}"')
def step_cms_only_event(context: StepContext, event: str) -> None:
    """Nothing while the hostile message was handled; afterwards, only about ``event``: every question about an
    item names it, and no question carries the hostile id. (Who the fan is may be asked again: the contract
    says what authorises a subscribe, not that nothing else is asked.)"""
    hostile = _hostile(context)
    assert_that(hostile.cms_meanwhile, equal_to([]), "what the CMS was asked while the hostile message was handled")
    wanted = f"/items/events/{context.world.event(event)}"
    seen = context.suite.stub.requests_since(context.world.stub_mark)
    items = [r.path for r in seen if r.path.startswith("/items/")]
    assert_that(items, equal_to([wanted]), "what the CMS was asked about items after the connection opened")
    if hostile.hostile_id is not None:
        carrying = [str(r) for r in seen if hostile.hostile_id in f"{r.path}?{r.query}"]
        assert_that(carrying, equal_to([]), "CMS requests carrying the hostile id")


@when("{person} sends a message larger than the live map accepts")
def step_oversized(context: StepContext, person: str) -> None:
    viewer = context.world.viewer(person)
    frame = sized_request(MAX_MESSAGE_BYTES + 1)  # one byte more than the largest accepted

    async def send() -> None:
        try:
            await viewer.send(frame)
        except Exception:  # the Processor may close while the frame is still being written
            pass

    context.suite.run(send())


def _assert_closed_with(context: StepContext, person: str, code: int) -> None:
    viewer = context.world.viewer(person)
    closed = context.suite.run(viewer.wait_closed(timeout=ANSWER))
    assert_that(closed[0], equal_to(code), f"{person}'s connection ended with {closed}")


@then('the database heard of no event but the "{event}"')
def step_db_only_event(context: StepContext, event: str) -> None:
    """What the service sent PostgreSQL (through the relay that overhears it) names the event the fan opened, as
    text or as a uuid's 16 bytes, and never the hostile id."""
    link = context.world.state_if_any(SlowLink)
    assert link is not None, "the service's conversation with the database is not overheard in this scenario"
    heard = bytes(link.heard)
    event_id = uuid.UUID(context.world.event(event))
    assert_that(str(event_id).encode() in heard or event_id.bytes in heard, equal_to(True),
                f"the database was never asked about the {event} ({len(heard)} bytes heard)")
    hostile = _hostile(context).hostile_id
    assert hostile is not None, "no hostile id was sent in this scenario"
    assert_that(hostile.encode() in heard, equal_to(False), "the database heard the hostile id")


@when("{person} sends a message of {size:Count} characters")
def step_sized(context: StepContext, person: str, size: int) -> None:
    """Sends a request whose event id is no id, ``size`` bytes in all; the answer is an error, or none at all
    if the connection is cut for it (the steps after say which was right)."""
    viewer = context.world.viewer(person)
    already = len(viewer.inbox)

    async def send() -> Frame | None:
        try:
            await viewer.send(sized_request(size))
            return await viewer.wait_for(lambda f: f.get("type") == "error", timeout=ANSWER, what="an error",
                                         since=already)
        except Exception:  # cut off: the Processor may close while the message is still being written
            return None

    _hostile(context).answer = context.suite.run(send())


@then("{person} is disconnected for sending a message that is too large")
def step_closed_too_large(context: StepContext, person: str) -> None:
    _assert_closed_with(context, person, CLOSE_TOO_LARGE)


# -- revoked sessions --------------------------------------------------------------------------------------

@when("the CMS revokes {person}'s session")
def step_revoke(context: StepContext, person: str) -> None:
    context.suite.run(count_from_now(context.world))
    context.suite.stub.revoke(context.world.cookie(person))


@then("{person} is told her session is no longer valid")
def step_told_unauthorized(context: StepContext, person: str) -> None:
    assert_that(context.world.answers[person], an_error("unauthorized"))


@then("{person} is disconnected because her session has ended")
def step_closed_session_ended(context: StepContext, person: str) -> None:
    _assert_closed_with(context, person, CLOSE_SESSION_ENDED)


# -- secrets -----------------------------------------------------------------------------------------------

@then("no session cookie of this scenario appears in any service's log")
def step_no_cookie_in_logs(context: StepContext) -> None:
    cookies = _cookies_seen(context)
    assert cookies, "this scenario used no session cookie"
    secrets_used = {value for cookie in cookies for value in (cookie, session_of(cookie)) if value}

    leaks = []
    for process in context.suite.processors:
        for path in process.log_paths:  # its stderr (the log) and its stdout
            text = path.read_text(errors="replace") if path.exists() else ""
            leaks += [f"{path.name}: …{secret[-6:]}" for secret in secrets_used if secret in text]
    assert_that(leaks, equal_to([]), "session cookies found in the Processor's logs")
