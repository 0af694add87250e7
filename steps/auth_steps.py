"""Who is signed in, and who may watch what (as the CMS stub answers)."""

from behave import given, then, when
from hamcrest import assert_that, equal_to, is_not, none


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
    assert_that(viewer.refusal, is_not(none()), "the upgrade was accepted")
    assert_that(viewer.refusal.status, equal_to(401), f"refusal: {viewer.refusal}")


@then("the CMS was not asked about the visitor")
def step_cms_untouched(context):
    seen = context.suite.stub.requests_since(context.world.stub_mark)
    assert_that([str(request) for request in seen], equal_to([]))
