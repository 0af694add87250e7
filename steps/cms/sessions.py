"""Who is signed in, and who may watch what, as the CMS (the Directus stand-in) answers: sessions that die
in each way Directus knows, share links, nameless sessions, plain refusals without a reason, events that do not
exist (hidden as Directus hides them, or revealed by a CMS configured to)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from behave import given, then, when
from hamcrest import all_of, assert_that, equal_to, has_entries, has_item, instance_of, is_not
from hamcrest.core.matcher import Matcher

from support.clock import ANSWER
from support.cms.visitors import add_visitor, refusals, requests_about, start_counting
from support.fans.matchers import an_error, assert_refused
from support.fans.viewer import Frame
from support.processes.scrape import MetricsSnapshot
from support.scenario.gherkin import StepContext

#: The name the World gives the event that exists neither in the database nor in the CMS.
NOWHERE = "an event that does not exist"
#: How the CMS turns a visitor away, in the feature's words -> the status and error code of its every answer
#: (None: a plain refusal, no Directus error object).
PLAIN_REFUSALS = {
    "as not signed in, giving no reason": (401, None),
    "as not allowed, giving no reason": (403, None),
    "as not allowed, calling her access forbidden": (403, "FORBIDDEN"),
}
#: What an error frame must carry for a person to read: a ``message`` (docs/processor.md, ``ws.frames.error.message``).
READABLE: Matcher[Any] = has_entries(message=all_of(instance_of(str), is_not(equal_to(""))))  # type: ignore[arg-type]  # hamcrest's all_of is typed for one element type; the matchers are of str


@dataclass
class Sessions:
    """What these steps remember: the metrics before a share-link visit, the answer for an event nowhere."""

    baseline: MetricsSnapshot | None = None
    nowhere_answer: Frame | None = None


def _sessions(context: StepContext) -> Sessions:
    return context.world.state(Sessions, Sessions)


@given('{person} may watch the "{event}"')
def step_may_watch(context: StepContext, person: str, event: str) -> None:
    context.world.allow(person, event)


@given('{person} is signed in for the organisation "{organisation}" only')
def step_other_organisation(context: StepContext, person: str, organisation: str) -> None:
    context.world.person(person)  # signed in, but granted nothing of this scenario's events


@when("a fan who is not signed in connects to the live map")
def step_anonymous(context: StepContext) -> None:
    context.suite.run(context.world.connect("the fan", signed_in=False))


@then("the fan is turned away as not signed in")
def step_refused(context: StepContext) -> None:
    viewer = context.world.viewer("the fan")
    assert_refused(viewer, 401)


@then("the CMS was not asked about the fan")
def step_cms_untouched(context: StepContext) -> None:
    seen = context.suite.stub.requests_since(context.world.stub_mark)
    assert_that([str(request) for request in seen], equal_to([]))


# -- the CMS as it really answers (features/03_cms.feature) ------------------------------------------------------

@when("the CMS changes the secret it signs sessions with")
def step_rotate_secret(context: StepContext) -> None:
    context.suite.stub.rotate_secret()


@when("{person}'s session expires")
def step_session_expires(context: StepContext, person: str) -> None:
    context.suite.stub.expire(context.world.cookie(person))


@then("{person} is asked to sign in again and disconnected")
def step_sign_in_again(context: StepContext, person: str) -> None:
    """``unauthorized``, then the connection closes with 1008 (policy violation): the session is dead."""
    assert_that(context.world.answers[person], an_error("unauthorized"))
    closed = context.suite.run(context.world.viewer(person).wait_closed(timeout=ANSWER))
    assert_that(closed[0], equal_to(1008), f"{person}'s connection ended with {closed}")


@when("{person} connects to the live map again")
def step_reconnect(context: StepContext, person: str) -> None:
    context.world.viewers.pop(person, None)
    context.suite.run(context.world.connect(person))


@then("{person} is turned away until she signs in again")
def step_refused_until_signed_in(context: StepContext, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_refused(viewer, 401)


@when("a fan with a share link of the CMS connects to the live map")
def step_share_link(context: StepContext) -> None:
    add_visitor(context.world, "the fan", context.suite.stub.share_session())
    _sessions(context).baseline = context.suite.run(context.world.metrics())
    context.suite.run(context.world.connect("the fan"))


@then("the refusal is counted as a share link, not as a CMS outage")
def step_counted_as_share(context: StepContext) -> None:
    baseline = _sessions(context).baseline
    assert baseline is not None, "no visitor with a share link came in this scenario"
    rose = refusals(context.suite.run(context.world.metrics()), baseline)
    assert_that(rose, equal_to({"share_session": 1}), "processor_auth_failures_total reasons that rose")


@when("{person} opens the live map of an event that does not exist")
def step_open_nowhere(context: StepContext, person: str) -> None:
    context.world.events[NOWHERE] = str(uuid.uuid4())  # in neither the database nor the CMS
    _sessions(context).nowhere_answer = context.suite.run(context.world.open_map(person, NOWHERE))


@given("the CMS hides which events exist, as Directus does")
def step_cms_hides_events(context: StepContext) -> None:
    """The stand-in's default: an event that does not exist is 403 FORBIDDEN, like a forbidden one."""
    assert not context.suite.stub.unknown_events_404, "the stand-in reveals unknown events"
    context.suite.run(start_counting(context.world))


@given("the CMS is configured to reveal which events do not exist")
def step_cms_reveals_events(context: StepContext) -> None:
    """404 for an event that does not exist (``DirectusStub.unknown_events_404``; Directus itself never does)."""
    context.suite.stub.unknown_events_404 = True
    context.suite.run(start_counting(context.world))


@then("for the event that does not exist, {person} was told exactly what she was told for the forbidden one")
def step_same_answer(context: StepContext, person: str) -> None:
    """Key for key, ``message`` included, apart from ``eventId`` (docs/processor.md,
    ``ws.subscribe.unknown-as-forbidden``); and both answers carry a message a person can read."""
    answer = _sessions(context).nowhere_answer
    assert answer is not None, f"{person} did not open the map of an event that does not exist"
    assert_that(context.world.answers[person], READABLE, "the answer for a forbidden event")
    existing = {k: v for k, v in context.world.answers[person].items() if k != "eventId" and not k.startswith("_")}
    nowhere = {k: v for k, v in answer.items() if k != "eventId" and not k.startswith("_")}
    assert_that(nowhere, equal_to(existing), "the answer for a missing event differs from a forbidden one")


@then("for the event that does not exist, {person} was told that it does not exist")
def step_told_not_found(context: StepContext, person: str) -> None:
    answer = _sessions(context).nowhere_answer
    assert answer is not None, f"{person} did not open the map of an event that does not exist"
    assert_that(answer, all_of(an_error("not_found", context.world.event(NOWHERE)), READABLE))


@given("the CMS turns {person} away {how}")
def step_plain_refusal(context: StepContext, person: str, how: str) -> None:
    """From now on every request with ``person``'s session is answered with that status and no error code (or
    the code named): a proxy or an auth extension in front of Directus. Counting starts here."""
    assert how in PLAIN_REFUSALS, f"no refusal called {how!r} (known: {list(PLAIN_REFUSALS)})"
    stub, someone = context.suite.stub, context.world.person(person)
    old = someone.cookie
    someone.cookie = stub.sign_in_refused(*PLAIN_REFUSALS[how])
    if old is not None:
        stub.forget(cookies=[old], users=[], events=[])
    context.suite.run(start_counting(context.world))


@given("the CMS says {person} is signed in but does not say who he is")
def step_nameless(context: StepContext, person: str) -> None:
    add_visitor(context.world, person, context.suite.stub.sign_in_nameless())


@then("{person} is turned away because signing in is unavailable")
def step_refused_nameless(context: StepContext, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_refused(viewer, 503, accepted=f"{person} was let in")


@then('the CMS was asked whether {person} may watch the "{event}"')
def step_cms_asked_about(context: StepContext, person: str, event: str) -> None:
    paths = [r.path for r in requests_about(context.world, person)]
    assert_that(paths, has_item(f"/items/events/{context.world.event(event)}"),
                f"what the CMS was asked with {person}'s session")
