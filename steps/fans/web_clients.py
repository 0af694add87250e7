"""Web pages' clients without a browser: allowed origins, sub-protocols, and what a turned-away page can learn.

The browser itself is in steps/fans/browser.py; these steps speak the same protocol with exact headers, so
they run everywhere and pin down the details a browser hides."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from behave import given, then, when
from hamcrest import assert_that, equal_to, has_entries, none

from support.clock import ANSWER, SETTLE, within
from support.fans.browser_session import SessionAnswer, ask_session
from support.fans.matchers import assert_refused
from support.fans.viewer import Viewer
from support.processes.instances import THAT_SERVICE, instances_of
from support.processes.instances import that_service as that_service_of
from support.processes.processor_process import ProcessorProcess
from support.processes.refusal_count import metrics_of, reason_of, rises
from support.processes.scrape import MetricsSnapshot
from support.scenario.gherkin import StepContext
from support.waiting import eventually

#: Our web site as the main Processor's allow-list names it (support/run/suite.py).
OUR_SITE = "https://live.example.test"
#: A web site no allow-list of the suite names.
ANOTHER_SITE = "https://evil.example.test"
#: What the page learns, by the feature file's words: HTTP status and the answer's ``status`` field.
ANSWERS = {
    "that Alice is signed in": (200, "signed_in"),
    "that Alice must sign in": (401, "sign_in"),
    "that signing in is unavailable for now": (503, "unavailable"),
    "that signing in is unavailable for now, and may read when to try again": (503, "unavailable"),
}
#: The answer with a ``Retry-After`` the page may read; the answer a page of another site may not read at all.
WITH_RETRY = "that signing in is unavailable for now, and may read when to try again"
NOT_FOR_IT = "nothing, as the answer is not for it"
#: Requests for what the service does not offer: (method, path), and what each answer's status means.
OTHER_REQUESTS = {
    "for a page that does not exist": ("GET", "/nothing-here"),
    "to post to the sign-in check": ("POST", "/live/session"),
    "to delete the sign-in check": ("DELETE", "/live/session"),
}
OTHER_ANSWERS = {"there is nothing there": 404, "it may only ask there": 405}


@dataclass
class WebClients:
    """What these steps remember: what the page learnt from ``GET /live/session``, from which web site, what the
    CMS was asked meanwhile and how the refusal counter rose."""

    session_answer: SessionAnswer | None = None
    asked_from: str | None = None
    cms_meanwhile: list[str] = field(default_factory=list)
    counted: dict[str, float] = field(default_factory=dict)
    #: The status and headers of a request for something the service does not offer.
    other: tuple[int, dict[str, str]] | None = None


def that_service(context: StepContext) -> ProcessorProcess:
    return that_service_of(context.world)


@given('a service whose only allowed web site is written "{entry}"')
def step_processor_allowing(context: StepContext, entry: str) -> None:
    instances_of(context.world).start(THAT_SERVICE, PROCESSOR_ALLOWED_ORIGINS=entry)


@when('{person}\'s page on our web site connects to the live map asking it to speak "{protocol}"')
def step_open_with_subprotocol(context: StepContext, person: str, protocol: str) -> None:
    world = context.world
    world.stub_mark = len(context.suite.stub.requests)
    viewer = world.viewers[person] = Viewer(person, world.person(person).cookie)
    context.suite.run(viewer.connect(context.suite.processor.live_url, origin=OUR_SITE, subprotocols=[protocol]))


@when("{person}'s page on our web site connects to the live map")
def step_open_from_our_site(context: StepContext, person: str) -> None:
    """As a browser does: with our site's ``Origin``, offering compression (``permessage-deflate``)."""
    world = context.world
    viewer = world.viewers[person] = Viewer(person, world.person(person).cookie)
    context.suite.run(viewer.connect(context.suite.processor.live_url, origin=OUR_SITE, offer_compression=True))


@then("{person} is let in")
def step_let_in(context: StepContext, person: str) -> None:
    viewer = context.world.viewer(person)
    assert_that(viewer.refusal, none(), f"{person} was turned away")


@then('{person} can watch the "{event}" live')
def step_can_watch(context: StepContext, person: str, event: str) -> None:
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event}")


@then("the live map sends {person}'s page its messages uncompressed, though the page offered compression")
def step_uncompressed(context: StepContext, person: str) -> None:
    """No ``Sec-WebSocket-Extensions`` in the answer to an upgrade that offered ``permessage-deflate``."""
    connection = context.world.viewer(person).connection
    assert connection is not None and connection.response is not None, f"{person} is not connected"
    extensions = connection.response.headers.get("Sec-WebSocket-Extensions")
    assert_that(extensions, none(), "extensions the live channel agreed to")


@then("{person} is turned away because the live map speaks no other language")
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


def _ask_session(context: StepContext, person: str, origin: str) -> None:
    suite, world = context.suite, context.world
    cookie = world.person(person).cookie
    assert suite.http is not None
    state = world.state(WebClients, WebClients)
    before: MetricsSnapshot = suite.run(metrics_of(world))
    mark = len(suite.stub.requests)
    state.session_answer = suite.run(ask_session(suite.http, suite.processor.base_url, origin=origin, cookie=cookie))
    state.cms_meanwhile = [str(r) for r in suite.stub.requests_since(mark)]
    state.counted = rises(suite.run(metrics_of(world)), before)
    state.asked_from = origin


@when("the page of our web site asks why {person} would be turned away")
def step_ask_session(context: StepContext, person: str) -> None:
    _ask_session(context, person, context.suite.web_site.origin)


@when("a page of another web site asks why {person} would be turned away")
def step_ask_session_elsewhere(context: StepContext, person: str) -> None:
    _ask_session(context, person, ANOTHER_SITE)


@then("the page learns {answer}")
def step_page_learns(context: StepContext, answer: str) -> None:
    got = _answer(context)
    if answer == NOT_FOR_IT:  # a page of a site not allowed: 403, and nothing a browser would let it read
        assert_that((got.status, got.state), equal_to((403, "origin_not_allowed")), f"answer: {got}")
        cors = {k: v for k, v in got.headers.items() if k.lower().startswith("access-control-")}
        assert_that(cors, equal_to({}), f"CORS headers on the answer to another web site: {got}")
        return
    assert answer in ANSWERS, f"no answer called {answer!r} (known: {[*ANSWERS, NOT_FOR_IT]})"
    status, state = ANSWERS[answer]
    assert_that((got.status, got.state), equal_to((status, state)), f"answer: {got}")
    assert_that(got.readable_by, equal_to(context.suite.web_site.origin), f"the page may not read it: {got}")
    if status == 401:
        assert_that(got.headers.get("WWW-Authenticate"), equal_to('Cookie realm="live"'), f"answer: {got}")
    if answer == WITH_RETRY:  # passed on from the upgrade, and exposed to the page's script
        retry_after = got.headers.get("Retry-After", "")
        assert_that(retry_after.isdigit(), equal_to(True), f"Retry-After of the answer: {got}")
        exposed = {h.strip().lower() for h in got.headers.get("Access-Control-Expose-Headers", "").split(",")}
        assert_that("retry-after" in exposed, equal_to(True), f"Retry-After is not exposed to the page: {got}")


def _answer(context: StepContext) -> SessionAnswer:
    got = context.world.state(WebClients, WebClients).session_answer
    assert got is not None, "the page asked nothing in this scenario"
    return got


@then("no cache may keep that answer, nor give it to a page of another web site")
def step_not_cached(context: StepContext) -> None:
    got = _answer(context)
    assert_that(got.headers.get("Cache-Control"), equal_to("no-store"), f"answer: {got}")
    varies = {h.strip().lower() for h in got.headers.get("Vary", "").split(",")}
    assert_that("origin" in varies, equal_to(True), f"the answer does not vary with Origin: {got}")


@then("the CMS was asked about {person} at most once")
def step_cms_at_most_once(context: StepContext, person: str) -> None:
    seen = context.world.state(WebClients, WebClients).cms_meanwhile
    assert_that(len(seen) <= 1, equal_to(True), f"what the CMS was asked while the page asked: {seen}")


@then("the service counted it as {kind}")
def step_session_counted(context: StepContext, kind: str) -> None:
    counted = context.world.state(WebClients, WebClients).counted
    expected = {} if kind == "no refusal" else {reason_of(kind): 1}
    assert_that(counted, equal_to(expected), "processor_auth_failures_total reasons that rose for the page's question")


@then("{person}'s connection to the live map, made from that page, gives the same reason and is counted the same way")
def step_same_as_upgrade(context: StepContext, person: str) -> None:
    """The upgrade with the same cookie and ``Origin``: refused with the status and the plain-text reason the page
    read (accepted if the page learnt "signed in"), and counted under the same reason."""
    suite, world = context.suite, context.world
    state = world.state(WebClients, WebClients)
    got = _answer(context)
    before: MetricsSnapshot = suite.run(metrics_of(world))
    viewer = world.viewers[person] = Viewer(person, world.person(person).cookie)
    suite.run(viewer.connect(suite.processor.live_url, origin=state.asked_from))
    rose = rises(suite.run(metrics_of(world)), before)
    if got.status == 200:
        assert_that(viewer.refusal, none(), f"{person}'s live channel was refused though the page learnt otherwise")
    else:
        refusal = assert_refused(viewer, got.status)
        assert_that(got.message, equal_to(refusal.body.strip()), "the page's message against the upgrade's reason")
    assert_that(rose, equal_to(state.counted), "reasons counted for the upgrade, against those for the page")


# -- a CMS limiting requests for a moment --------------------------------------------------------------------

@given("the CMS is limiting requests for a moment")
def step_cms_limiting_briefly(context: StepContext) -> None:
    """Every request gets 429 until the scenario ends. The Processor then holds its questions back until the
    limit's ``Retry-After`` passes: the clean-up lifts the limit and waits until the Processor answers a signed-in
    fan again, so the next scenario finds it as usual."""
    suite, world = context.suite, context.world
    stub = suite.stub
    stub.rate_limit(points=50, window=None)
    stub.use_up_rate_limit()
    caretaker = world.person("the caretaker")

    async def back_to_normal() -> None:
        stub.lift_rate_limit()
        assert suite.http is not None
        http = suite.http

        async def answered() -> tuple[bool, str]:
            got = await ask_session(http, suite.processor.base_url, origin=OUR_SITE, cookie=caretaker.cookie)
            return got.status == 200, str(got)

        await eventually(answered, timeout=SETTLE, what="the Processor to let signed-in fans in again")

    world.cleanups.append(back_to_normal)


# -- other requests ------------------------------------------------------------------------------------------

@when("a page asks the service {request}")
def step_other_request(context: StepContext, request: str) -> None:
    assert request in OTHER_REQUESTS, f"no request called {request!r} (known: {list(OTHER_REQUESTS)})"
    method, path = OTHER_REQUESTS[request]
    suite = context.suite
    assert suite.http is not None
    http = suite.http

    async def ask() -> tuple[int, dict[str, str]]:
        limit = aiohttp.ClientTimeout(total=within(ANSWER))
        async with http.request(method, f"{suite.processor.base_url}{path}", headers={"Origin": OUR_SITE},
                                timeout=limit) as r:
            await r.read()
            return r.status, dict(r.headers)

    context.world.state(WebClients, WebClients).other = suite.run(ask())


@then("the page is told {answer}")
def step_other_answer(context: StepContext, answer: str) -> None:
    assert answer in OTHER_ANSWERS, f"no answer called {answer!r} (known: {list(OTHER_ANSWERS)})"
    got = context.world.state(WebClients, WebClients).other
    assert got is not None, "the page asked nothing else in this scenario"
    assert_that(got[0], equal_to(OTHER_ANSWERS[answer]), f"answer: {got}")


# -- web sites allowed, or not, by a service of the scenario's own ---------------------------------------------

@when('{person}\'s browser connects to that service from the web site "{origin:Site}"')
def step_open_on_that_service(context: StepContext, person: str, origin: str) -> None:
    context.suite.run(context.world.connect(person, origin=origin, processor=that_service(context)))


@then("a page without a web site of its own is turned away by that service")
def step_null_origin(context: StepContext) -> None:
    """``Origin: null``: a sandboxed frame, a page from a file; even with a signed-in fan's cookie."""
    viewer = Viewer("a page without a web site", context.world.cookie("Alice"))
    context.world.viewers[viewer.name] = viewer
    context.suite.run(viewer.connect(that_service(context).live_url, origin="null"))
    assert_refused(viewer, 403)


@then("{person}'s app, which is no web page, is let in by that service")
def step_app_let_in(context: StepContext, person: str) -> None:
    """No ``Origin`` at all: a client that is not a browser."""
    viewer = Viewer(f"{person}'s app", context.world.cookie(person))
    context.world.viewers[viewer.name] = viewer
    context.suite.run(viewer.connect(that_service(context).live_url))
    assert_that(viewer.refusal, none(), f"{person}'s app was turned away")


@then("that service warned once, when it started, that every web site may use a fan's session")
def step_warned_once(context: StepContext) -> None:
    """Warnings about the allow-list: those naming origins, the setting or ``*`` (a warning about something else,
    such as a slow database at start, is not this one)."""
    log = that_service(context).log_path.read_text(errors="replace")
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    about = [line for line in warnings if "*" in line or "origin" in line.lower()]
    assert_that(len(about), equal_to(1), f"warnings about the allowed web sites in its log: {warnings}")
