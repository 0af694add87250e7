"""Fans in a real browser: the live map page, its own JavaScript as the live channel's client, and what the
page shows them. The machinery is in support/fans/browser.py (Chromium) and support/fans/browser_pages.py (the page)."""

from __future__ import annotations

import asyncio

from behave import given, then, when
from hamcrest import assert_that, contains_inanyorder, equal_to, has_entries

from support.clock import ANSWER
from support.cms.directus_stub import session_of
from support.fans.browser import FanBrowser, FanBrowsers
from support.fans.viewer import QUIET_WINDOW
from support.scenario.gherkin import StepContext

#: The page's first reconnect delay (ms): shorter than the quiet window, so a page that should have stopped
#: but tries again is caught trying within that window.
BACKOFF_MS = 100
SITES = {"our web site": "ours", "another web site": "other"}


def _browsers(context: StepContext) -> dict[str, FanBrowser]:
    return context.world.state(FanBrowsers, FanBrowsers).by_person


def _browser(context: StepContext, person: str, *, signed_in: bool = True) -> FanBrowser:
    """``person``'s browser, opened (with a fresh cookie jar) the first time the scenario mentions it."""
    browsers = _browsers(context)
    if person in browsers:
        return browsers[person]
    suite, world = context.suite, context.world
    fan = suite.run(FanBrowser.open(suite.chromium, person))
    browsers[person] = fan
    world.cleanups.append(fan.close)
    world.reporters.append(lambda: (f"{person}'s browser", suite.run(fan.describe())))
    cookie = world.person(person, signed_in=signed_in).cookie
    if cookie is not None:
        suite.run(fan.sign_in(cookie, suite.processor.base_url))
    return fan


def _open_map(context: StepContext, person: str, event: str, site: str, *, signed_in: bool = True) -> FanBrowser:
    assert site in SITES, f"no web site called {site!r} (known: {list(SITES)})"
    fan = _browser(context, person, signed_in=signed_in)
    context.world.stub_mark = len(context.suite.stub.requests)  # what the CMS is asked from here on
    url = context.suite.web_site.map_url(SITES[site], processor_url=context.suite.processor.base_url,
                                         event_id=context.world.event(event), backoff_ms=BACKOFF_MS)
    context.suite.run(fan.visit(url))
    return fan


@given("{person} has signed in on our web site")
def step_signed_in(context: StepContext, person: str) -> None:
    _browser(context, person)


@when('{person} opens the live map of the "{event}" on {site}')
def step_open_map(context: StepContext, person: str, event: str, site: str) -> None:
    _open_map(context, person, event, site)


@given('{person} has the live map of the "{event}" open in her browser')
def step_map_open(context: StepContext, person: str, event: str) -> None:
    fan = _open_map(context, person, event, "our web site")
    context.suite.run(fan.wait_for_state("live", timeout=ANSWER))


@when('a fan who is not signed in visits the live map of the "{event}" on our web site')
def step_visitor_opens(context: StepContext, event: str) -> None:
    _open_map(context, "the fan", event, "our web site", signed_in=False)


@when('{person} adds the "{event}" to her map')
def step_add_event(context: StepContext, person: str, event: str) -> None:
    fan = _browsers(context)[person]

    async def follow() -> None:
        await fan.page.fill("#follow input", context.world.event(event))
        await fan.page.click("#follow button")

    context.suite.run(follow())


@then("{person}'s browser shows these cars:")
def step_shows_cars(context: StepContext, person: str) -> None:
    fan = _browsers(context)[person]
    context.suite.run(fan.wait_for_state("live", timeout=ANSWER))
    cars = context.suite.run(fan.cars())
    expected = [has_entries(device=context.world.device(row["tracker"]), lat=str(float(row["latitude"])),
                            lon=str(float(row["longitude"]))) for row in context.table]
    assert_that(cars, contains_inanyorder(*expected), f"{person}'s page: {context.suite.run(fan.describe())}")  # type: ignore[misc, arg-type]  # PyHamcrest's generic matchers: mypy infers Matcher[Never] for the cars


@then("{person}'s browser shows {tracker} at {latitude:g}, {longitude:g} within {seconds:g} second")
def step_shows_car_within(context: StepContext, person: str, tracker: str, latitude: float, longitude: float,
                          seconds: float) -> None:
    fan = _browsers(context)[person]
    context.suite.run(fan.wait_for_car(context.world.device(tracker), latitude, longitude, timeout=seconds,
                                       label=tracker))


@then("{person}'s browser shows the live map")
def step_shows_live(context: StepContext, person: str) -> None:
    context.suite.run(_browsers(context)[person].wait_for_state("live", timeout=ANSWER))


@then('{person}\'s page says "{text}"')
def step_page_says(context: StepContext, person: str, text: str) -> None:
    context.suite.run(_browsers(context)[person].wait_for_text(text, timeout=ANSWER))


@then("{person}'s page shows no cars")
def step_no_cars(context: StepContext, person: str) -> None:
    assert_that(context.suite.run(_browsers(context)[person].cars()), equal_to([]))


@then("{person}'s page stops trying to connect")
def step_stops(context: StepContext, person: str) -> None:
    """Negative check after the positive barrier of the page's message: within the quiet window (longer than
    the page's first back-off) the page opens no new connection and the CMS hears nothing more of it."""
    fan = _browsers(context)[person]
    before = context.suite.run(fan.state())
    mark = len(context.suite.stub.requests)
    context.suite.run(asyncio.sleep(QUIET_WINDOW))  # quiet-window: documented in support/fans/viewer.py
    after = context.suite.run(fan.state())
    assert_that(after["attempts"], equal_to(before["attempts"]), f"{person}'s page tried again: {after}")
    cookie = context.world.person(person).cookie
    token = session_of(cookie) if cookie else None
    late = [str(r) for r in context.suite.stub.requests_since(mark) if r.session == token]
    assert_that(late, equal_to([]), "what the CMS was asked about the page's session after it stopped")
