"""Who is signed in, and who may watch what, as the CMS (the Directus stand-in) answers: sessions that die
in each way Directus knows, share links, a CMS limiting requests, events that do not exist."""

import time
import uuid

from behave import given, then, when
from behave.runner import Context
from hamcrest import (
    all_of,
    assert_that,
    equal_to,
    greater_than,
    greater_than_or_equal_to,
    has_entries,
    has_item,
    instance_of,
    not_none,
)

from support.cms.visitors import add_visitor, refusals, requests_about
from support.fans.matchers import an_error


@given('{person} may watch the "{event}"')
def step_may_watch(context, person, event):
    context.world.allow(person, event)


@given('{person} is signed in for the organisation "{organisation}" only')
def step_other_organisation(context, person, organisation):
    context.world.person(person)  # signed in, but granted nothing of this scenario's events


@when("a visitor who is not signed in opens the live channel")
def step_anonymous(context):
    context.suite.run(context.world.connect("the visitor", signed_in=False))


@then("the visitor is turned away as not signed in")
def step_refused(context):
    viewer = context.world.viewer("the visitor")
    assert_that(viewer.refusal, not_none(), "the upgrade was accepted")
    assert_that(viewer.refusal.status, equal_to(401), f"refusal: {viewer.refusal}")


@then("the CMS was not asked about the visitor")
def step_cms_untouched(context):
    seen = context.suite.stub.requests_since(context.world.stub_mark)
    assert_that([str(request) for request in seen], equal_to([]))


# -- the CMS as it really answers (features/cms.feature) ------------------------------------------------------

#: How long a fan told to sign in again waits for the Processor to close the connection.
CLOSE_WAIT = 5.0
#: The name the World gives the event that exists neither in the database nor in the CMS.
NOWHERE = "an event that does not exist"


@when("the CMS changes the secret it signs sessions with")
def step_rotate_secret(context: Context) -> None:
    context.suite.stub.rotate_secret()


@when("{person}'s session expires")
def step_session_expires(context: Context, person: str) -> None:
    context.suite.stub.expire(context.world.cookie(person))


@then("{person} is asked to sign in again and disconnected")
def step_sign_in_again(context: Context, person: str) -> None:
    """``unauthorized``, then the connection closes with 1008 (policy violation): the session is dead."""
    assert_that(context.world.answers[person], an_error("unauthorized"))
    closed = context.suite.run(context.world.viewer(person).wait_closed(timeout=CLOSE_WAIT))
    assert_that(closed[0], equal_to(1008), f"{person}'s connection ended with {closed}")


@when("{person} opens the live channel again")
def step_reconnect(context: Context, person: str) -> None:
    context.world.viewers.pop(person, None)
    context.suite.run(context.world.connect(person))


@then("{person} is turned away until she signs in again")
def step_refused_until_signed_in(context: Context, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_that(viewer.refusal, not_none(), "the upgrade was accepted")
    assert_that(viewer.refusal.status, equal_to(401), f"refusal: {viewer.refusal}")


@when("a visitor with a share link of the CMS opens the live channel")
def step_share_link(context: Context) -> None:
    add_visitor(context.world, "the visitor", context.suite.stub.share_session())
    context.world.notes.cms_baseline = context.suite.run(context.world.metrics())
    context.suite.run(context.world.connect("the visitor"))


@then("the refusal is counted as a share link, not as a CMS outage")
def step_counted_as_share(context: Context) -> None:
    rose = refusals(context.suite.run(context.world.metrics()), context.world.notes.cms_baseline)
    assert_that(rose, equal_to({"share_session": 1}), "processor_auth_failures_total reasons that rose")


@when("{person} opens the live map of an event that does not exist")
def step_open_nowhere(context: Context, person: str) -> None:
    context.world.events[NOWHERE] = str(uuid.uuid4())  # in neither the database nor the CMS
    context.world.notes.nowhere_answer = context.suite.run(context.world.open_map(person, NOWHERE))


@then("{person} got the same answer for the event that does not exist")
def step_same_answer(context: Context, person: str) -> None:
    existing = {k: v for k, v in context.world.answers[person].items() if k != "eventId" and not k.startswith("_")}
    nowhere = {k: v for k, v in context.world.notes.nowhere_answer.items() if k != "eventId" and not k.startswith("_")}
    assert_that(nowhere, equal_to(existing), "the answer for a missing event differs from a forbidden one")


@given("the CMS is limiting requests and has none left for now")
def step_cms_limiting(context: Context) -> None:
    stub = context.suite.stub
    context.world.notes.cms_baseline = context.suite.run(context.world.metrics())
    stub.rate_limit(points=50, window=None)  # the window ends when the scenario says so
    stub.use_up_rate_limit()


@when("the CMS limit passes")
def step_cms_limit_passes(context: Context) -> None:
    context.suite.stub.lift_rate_limit()
    context.world.notes.back_at = time.monotonic()  # for the "again" step's report of how long getting back in took


@then("{person} is told to try again in a moment")
def step_try_again(context: Context, person: str) -> None:
    """Not an outage: ``unavailable`` with the seconds to wait (``retryAfter``)."""
    answer = context.world.answers[person]
    assert_that(answer, all_of(an_error("unavailable"), has_entries(retryAfter=all_of(
        instance_of(int), greater_than_or_equal_to(1)))))


@then("{person} is turned away for now and told to try again in a moment")
def step_refused_try_again(context: Context, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_that(viewer.refusal, not_none(), "the upgrade was accepted")
    assert_that(viewer.refusal.status, equal_to(503), f"refusal: {viewer.refusal}")
    retry_after = viewer.refusal.headers.get("retry-after", "")
    assert_that(retry_after.isdigit() and int(retry_after) >= 1, equal_to(True),
                f"Retry-After of the refusal: {retry_after!r}")


@then("the refusals are counted as the CMS limiting requests, not as a CMS outage")
def step_counted_as_limited(context: Context) -> None:
    rose = refusals(context.suite.run(context.world.metrics()), context.world.notes.cms_baseline)
    assert_that(rose, has_entries(directus_rate_limited=greater_than(0)), "auth failure reasons that rose")
    assert_that(set(rose), equal_to({"directus_rate_limited"}), "auth failure reasons that rose")


@given("the CMS says {person} is signed in but does not say who he is")
def step_nameless(context: Context, person: str) -> None:
    add_visitor(context.world, person, context.suite.stub.sign_in_nameless())


@then("{person} is turned away because signing in is unavailable")
def step_refused_nameless(context: Context, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_that(viewer.refusal, not_none(), f"{person} was let in")
    assert_that(viewer.refusal.status, equal_to(503), f"refusal: {viewer.refusal}")


@then('the CMS was asked whether {person} may watch the "{event}"')
def step_cms_asked_about(context: Context, person: str, event: str) -> None:
    paths = [r.path for r in requests_about(context.world, person)]
    assert_that(paths, has_item(f"/items/events/{context.world.event(event)}"),
                f"what the CMS was asked with {person}'s session")
