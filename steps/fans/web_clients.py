"""Web pages' clients without a browser: allowed origins, sub-protocols, and what a turned-away page can learn.

The browser itself is in steps/fans/browser.py; these steps speak the same protocol with exact headers, so
they run everywhere and pin down the details a browser hides."""

from __future__ import annotations

from dataclasses import dataclass

from behave import given, then, when
from hamcrest import assert_that, equal_to, has_entries, none

from support.fans.browser_session import SessionAnswer, ask_session
from support.fans.matchers import assert_refused
from support.fans.viewer import Viewer
from support.processes.instances import ScenarioInstances, instances_of
from support.scenario.gherkin import StepContext

#: Our web site as the main Processor's allow-list names it (support/run/suite.py).
OUR_SITE = "https://live.example.test"
#: What the page learns, by the feature file's words: HTTP status and the answer's ``status`` field.
ANSWERS = {
    "that Alice is signed in": (200, "signed_in"),
    "that Alice must sign in": (401, "sign_in"),
    "that signing in is unavailable for now": (503, "unavailable"),
}


@dataclass
class WebClients:
    """What these steps remember: what the page learnt from ``GET /live/session``."""

    session_answer: SessionAnswer | None = None


@given('a Processor {name} whose only allowed web site is written "{entry}"')
def step_processor_allowing(context: StepContext, name: str, entry: str) -> None:
    instances_of(context.world).start(name, PROCESSOR_ALLOWED_ORIGINS=entry)


@when('{person}\'s browser opens the live channel of Processor {name} from the web site "{origin}"')
def step_open_on(context: StepContext, person: str, name: str, origin: str) -> None:
    process = context.world.state(ScenarioInstances).instance(name).process
    context.suite.run(context.world.connect(person, origin=origin, processor=process))


@when('{person}\'s page on our web site opens the live channel asking for the sub-protocol "{protocol}"')
def step_open_with_subprotocol(context: StepContext, person: str, protocol: str) -> None:
    world = context.world
    world.stub_mark = len(context.suite.stub.requests)
    viewer = world.viewers[person] = Viewer(person, world.person(person).cookie)
    context.suite.run(viewer.connect(context.suite.processor.live_url, origin=OUR_SITE, subprotocols=[protocol]))


@when("{person}'s page on our web site opens the live channel")
def step_open_from_our_site(context: StepContext, person: str) -> None:
    context.suite.run(context.world.connect(person, origin=OUR_SITE))


@then("{person} is let in")
def step_let_in(context: StepContext, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_that(viewer.refusal, none(), f"{person} was turned away")


@then('{person} can watch the "{event}" live')
def step_can_watch(context: StepContext, person: str, event: str) -> None:
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event}")


@then("{person} is turned away because the live channel speaks no sub-protocol")
def step_refused_subprotocol(context: StepContext, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_refused(viewer, 400)


# -- GET /live/session ---------------------------------------------------------------------------------------

@given("{person} is signed in")
def step_signed_in(context: StepContext, person: str) -> None:
    context.world.person(person)


@given("{person} is not signed in")
def step_not_signed_in(context: StepContext, person: str) -> None:
    context.world.person(person, signed_in=False)


@given("{person}'s session was revoked by the CMS")
def step_revoked(context: StepContext, person: str) -> None:
    context.suite.stub.revoke(context.world.cookie(person))


@when("the page of our web site asks why {person} would be turned away")
def step_ask_session(context: StepContext, person: str) -> None:
    suite = context.suite
    cookie = context.world.person(person).cookie
    assert suite.http is not None
    context.world.state(WebClients, WebClients).session_answer = suite.run(
        ask_session(suite.http, suite.processor.base_url, origin=suite.web_site.origin, cookie=cookie))


@then("the page learns {answer}")
def step_page_learns(context: StepContext, answer: str) -> None:
    assert answer in ANSWERS, f"no answer called {answer!r} (known: {list(ANSWERS)})"
    status, state = ANSWERS[answer]
    got = context.world.state(WebClients).session_answer
    assert got is not None, "the page asked nothing in this scenario"
    assert_that((got.status, got.state), equal_to((status, state)), f"answer: {got}")
    assert_that(got.readable_by, equal_to(context.suite.web_site.origin), f"the page may not read it: {got}")
    if status == 401:
        assert_that(got.headers.get("WWW-Authenticate"), equal_to('Cookie realm="live"'), f"answer: {got}")
