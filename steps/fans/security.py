"""Hostile and careless clients: no session, foreign sites, malformed or huge messages, floods, revoked
sessions, and the secrecy of session cookies in the Processor's logs."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from behave import given, then, when
from hamcrest import assert_that, equal_to, greater_than, has_entries, less_than, none

from support.clock import ANSWER, STEP
from support.cms.directus_stub import SESSION_COOKIE, session_of
from support.fans.matchers import an_error, assert_refused
from support.fans.viewer import Frame, Viewer
from support.scenario.gherkin import StepContext
from support.waiting import eventually

#: The malformed messages of the feature file, by the name it gives them.
MALFORMED = {
    "text that is not JSON": "{subscribe: yes",
    "a list instead of an object": json.dumps([{"type": "subscribe",
                                                "eventId": "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"}]),
    "a message of an unknown type": json.dumps({"type": "watch", "eventId": "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"}),
    "a request to follow with no event": json.dumps({"type": "subscribe"}),
}

#: Hostile event ids: each must be refused before the CMS or the database is asked about it.
HOSTILE_IDS = {
    "written like an SQL injection": "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a'; DROP TABLE positions; --",
    "pointing at another CMS path": "../users/me",
    "far longer than any real event id": "a" * 10_240,  # 10 KB
    # ARABIC-INDIC and FULLWIDTH digits: "digits" to Unicode-aware matching, not to the UUID grammar
    "written with look-alike digits": "\u0667f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5\uff15",
}

#: The largest message the Processor accepts by default (docs/processor.md: PROCESSOR_MAX_FRAME_BYTES).
MAX_MESSAGE_BYTES = 64 * 1024
#: WebSocket close codes the fans experience (docs/processor.md, "Close codes").
CLOSE_TOO_LARGE = 1009
CLOSE_SESSION_ENDED = 1008
#: The error code of a request refused by the per-connection rate limit.
SLOW_DOWN = "rate_limited"


@dataclass
class Hostile:
    """What these steps remember: the error a message got, a flood sent, the cookies made up for visitors."""

    answer: Frame | None = None
    #: (inbox length before the flood, requests sent, event id)
    flood: tuple[int, int, str] | None = None
    made_up_cookies: list[str] = field(default_factory=list)


def _hostile(context: StepContext) -> Hostile:
    return context.world.state(Hostile, Hostile)


def _made_up_cookie() -> str:
    return f"{SESSION_COOKIE}={secrets.token_urlsafe(24)}"


def _cookies_seen(context: StepContext) -> list[str]:
    cookies = _hostile(context).made_up_cookies
    return [*cookies, *(p.cookie for p in context.world.people.values() if p.cookie)]


# -- the upgrade -------------------------------------------------------------------------------------------

def _connect_visitor_with_made_up_cookie(context: StepContext) -> Viewer:
    cookie = _made_up_cookie()
    _hostile(context).made_up_cookies.append(cookie)
    viewer = Viewer("the visitor", cookie)
    context.world.viewers["the visitor"] = viewer
    context.suite.run(viewer.connect(context.suite.processor.live_url))
    return viewer


@when("a visitor with a made-up session cookie opens the live channel")
def step_made_up_cookie(context: StepContext) -> None:
    _connect_visitor_with_made_up_cookie(context)


@given("a visitor with a made-up session cookie has been turned away")
def step_made_up_cookie_refused(context: StepContext) -> None:
    viewer = _connect_visitor_with_made_up_cookie(context)
    assert_refused(viewer, 401)


@when('{person}\'s browser opens the live channel from the web site "{origin}"')
def step_foreign_origin(context: StepContext, person: str, origin: str) -> None:
    context.world.stub_mark = len(context.suite.stub.requests)
    context.suite.run(context.world.connect(person, origin=origin))


@given('{person} has been turned away when opening the live channel from the web site "{origin}"')
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

@given("{person} has the live channel open")
def step_channel_open(context: StepContext, person: str) -> None:
    viewer = context.suite.run(context.world.connect(person))
    assert_that(viewer.refusal, none(), f"{person}'s connection was refused")
    context.world.stub_mark = len(context.suite.stub.requests)  # what the CMS is asked from here on


def _send_and_await_error(context: StepContext, person: str, message: str) -> None:
    viewer = context.world.viewer(person)
    already = len(viewer.inbox)
    context.suite.run(viewer.send(message))
    _hostile(context).answer = context.suite.run(viewer.wait_for(lambda f: f.get("type") == "error", timeout=ANSWER,
                                                                 what="an error", since=already))


@when('{person} sends the malformed message "{message}"')
def step_send_malformed(context: StepContext, person: str, message: str) -> None:
    assert message in MALFORMED, f"no malformed message called {message!r} (known: {list(MALFORMED)})"
    _send_and_await_error(context, person, MALFORMED[message])


@when("{person} asks to follow the event {kind}")
def step_hostile_id(context: StepContext, person: str, kind: str) -> None:
    assert kind in HOSTILE_IDS, f"no hostile id called {kind!r} (known: {list(HOSTILE_IDS)})"
    _send_and_await_error(context, person, json.dumps({"type": "subscribe", "eventId": HOSTILE_IDS[kind]}))


@then("{person} is told the message was malformed")
def step_told_malformed(context: StepContext, person: str) -> None:
    assert_that(_hostile(context).answer, an_error("bad_request"))


@then('{person} can still open the live map of the "{event}"')
def step_still_usable(context: StepContext, person: str, event: str) -> None:
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event} afterwards")


@then('the CMS was asked about no event but the "{event}"')
def step_cms_only_event(context: StepContext, event: str) -> None:
    wanted = f"/items/events/{context.world.event(event)}"
    seen = [r.path for r in context.suite.stub.requests_since(context.world.stub_mark)]
    assert_that(seen, equal_to([wanted]), "what the CMS was asked after the connection opened")


@when("{person} sends a message larger than the live channel accepts")
def step_oversized(context: StepContext, person: str) -> None:
    viewer = context.world.viewer(person)
    frame = json.dumps({"type": "subscribe", "eventId": "x" * (MAX_MESSAGE_BYTES + 1)})

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


# -- floods ------------------------------------------------------------------------------------------------

@when('{person} asks to follow the "{event}" {count:d} times in one burst')
def step_flood(context: StepContext, person: str, event: str, count: int) -> None:
    viewer = context.world.viewer(person)
    message = json.dumps({"type": "subscribe", "eventId": context.world.event(event)})
    _hostile(context).flood = (len(viewer.inbox), count, context.world.event(event))
    context.world.stub_mark = len(context.suite.stub.requests)

    async def _send_all() -> None:
        for _ in range(count):
            await viewer.send(message)

    context.suite.run(_send_all())


@then("{person} is disconnected for sending a message that is too large")
def step_closed_too_large(context: StepContext, person: str) -> None:
    _assert_closed_with(context, person, CLOSE_TOO_LARGE)


@then("{person} gets an answer to each request, most of them asking {pronoun} to slow down")
def step_flood_answers(context: StepContext, person: str, pronoun: str) -> None:
    """Every request answered (none silently dropped), most with the rate-limit error."""
    code = SLOW_DOWN
    viewer = context.world.viewer(person)
    flood = _hostile(context).flood
    assert flood is not None, f"{person} sent no flood of requests in this scenario"
    since, count, event_id = flood

    def answers() -> list[Frame]:
        return [f for f in viewer.inbox[since:]
                if f.get("eventId") == event_id and f.get("type") in ("subscribed", "error")]

    async def all_answered() -> tuple[bool, int]:
        return len(answers()) >= count, len(answers())

    context.suite.run(eventually(all_answered, timeout=STEP, what=f"{count} answers to {person}'s requests"))
    got = answers()
    assert_that(len(got), equal_to(count), f"answers to {person}'s {count} requests")
    limited = [a for a in got if a.get("type") == "error" and a.get("code") == code]
    print(f"{len(got)} answers, {len(limited)} of them {code!r}")
    assert_that(len(limited), greater_than(count // 2), f"answers that were {code!r}")


@then("the CMS was asked about {person}'s requests far fewer than {count:d} times")
def step_cms_spared(context: StepContext, person: str, count: int) -> None:
    token = session_of(context.world.person(person).cookie or "")
    seen = [r for r in context.suite.stub.requests_since(context.world.stub_mark) if r.session == token]
    print(f"the CMS saw {len(seen)} requests for {person}'s session during the flood")
    assert_that(len(seen), less_than(count // 5), "requests the CMS saw for Alice's session during the flood")


# -- revoked sessions --------------------------------------------------------------------------------------

@when("the CMS revokes {person}'s session")
def step_revoke(context: StepContext, person: str) -> None:
    context.suite.stub.revoke(context.world.cookie(person))


@then("{person} is told her session is no longer valid")
def step_told_unauthorized(context: StepContext, person: str) -> None:
    assert_that(context.world.answers[person], an_error("unauthorized"))


@then("{person} is disconnected because her session has ended")
def step_closed_session_ended(context: StepContext, person: str) -> None:
    _assert_closed_with(context, person, CLOSE_SESSION_ENDED)


# -- secrets -----------------------------------------------------------------------------------------------

@then("no session cookie of this scenario appears in any Processor log")
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
