"""Who is turned away at the door, for which reason first, how the service counts it; fans of "that service" (a
service of the scenario's own, steps/processes/services.py)."""

from __future__ import annotations

import re

from behave import given, then, when
from hamcrest import assert_that, equal_to, none

from support.fans.matchers import assert_refused
from support.fans.viewer import Viewer
from support.processes.instances import that_service as that_service_of
from support.processes.processor_process import ProcessorProcess
from support.processes.refusal_count import count_from_now, counted_since, reason_of
from support.scenario.gherkin import StepContext, web_site

#: How a visitor's upgrade can be wrong besides the cookie, as the feature file says it.
FROM_SITE = re.compile(r'from the web site "(?P<origin>[^"]+)"')
IN_A_LANGUAGE = "in a language it does not speak"
#: The sub-protocol a page asks for when it asks for one (a browser's ``new WebSocket(url, "live.v1")``).
A_LANGUAGE = "live.v1"


def that_service(context: StepContext) -> ProcessorProcess:
    return that_service_of(context.world)


@when("a fan who is not signed in connects to the live map {how}")
def step_visitor_with_problems(context: StepContext, how: str) -> None:
    """``how``: ``from the web site "<origin>"`` and/or ``in a language it does not speak`` (a sub-protocol), or
    ``from our web site`` (the allowed origin)."""
    site = FROM_SITE.search(how)
    origin = web_site(site["origin"]) if site else "https://live.example.test" if "our web site" in how else None
    subprotocols = [A_LANGUAGE] if IN_A_LANGUAGE in how else None
    assert origin or subprotocols, f"nothing said about how the fan connects to the live map: {how!r}"
    world = context.world
    viewer = world.viewers["the fan"] = Viewer("the fan", None)
    context.suite.run(count_from_now(world))
    context.suite.run(viewer.connect(context.suite.processor.live_url, origin=origin, subprotocols=subprotocols))


@then("{person} is turned away for asking for a language the live map does not speak")
def step_refused_language(context: StepContext, person: str) -> None:
    assert_refused(context.world.viewer(person), 400)


@then("the service counts one refusal of {kind}")
def step_counted(context: StepContext, kind: str) -> None:
    """``processor_auth_failures_total`` rose by exactly one, for that reason and no other."""
    rose = context.suite.run(counted_since(context.world))
    assert_that(rose, equal_to({reason_of(kind): 1}), "processor_auth_failures_total reasons that rose")


# -- that service ------------------------------------------------------------------------------------------

@given("{person} is connected to that service")
def step_channel_of_that_service(context: StepContext, person: str) -> None:
    viewer = context.suite.run(context.world.connect(person, processor=that_service(context)))
    assert_that(viewer.refusal, none(), f"{person}'s connection was refused")
    context.world.stub_mark = len(context.suite.stub.requests)  # what the CMS is asked from here on
