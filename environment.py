"""behave hooks: thin on purpose; the work lives in support/ (see support/run/fixtures.py)."""

from behave import use_fixture
from behave.model_core import Status

from support import clock
from support.run.fixtures import browser_missing, live_services, run_order, run_shard, say, scenario_world
from support.run.interrupts import sigterm_aborts_the_run
from support.run.reports import add_reports_to_this_run, attach_diagnostics
from support.run.settings import Settings
from support.services.base import ServiceControlUnsupported, service_control
from support.services.leftovers import sweep_earlier_runs

# -D report=...: behave runs no hook in a dry run, but it runs this file; the reports start with the run either way.
add_reports_to_this_run(globals(), say)


def before_all(context):
    sigterm_aborts_the_run()
    context.settings = Settings.from_userdata(context.config.userdata)
    clock.set_factor(context.settings.timeout_factor)
    if cleaned := sweep_earlier_runs():  # what a killed run left running, before this run starts its own
        say(cleaned)
    use_fixture(run_shard, context)  # -D shard=i/n: this shard's scenarios only, before they are shuffled
    use_fixture(run_order, context)
    use_fixture(live_services, context)


def before_feature(context, feature):
    if context.skip_reason:
        feature.skip(reason=context.skip_reason)


def before_scenario(context, scenario):
    if context.skip_reason:
        return
    if "needs-service-control" in scenario.effective_tags:
        try:
            service_control(context.suite.provider)
        except ServiceControlUnsupported as exc:
            reason = f"@needs-service-control: {exc}"
            say(f"skipping {scenario.name!r}: {reason}")
            scenario.skip(reason=reason)
            return
    if missing := browser_missing(context, scenario.effective_tags):
        scenario.skip(reason=missing)
        return
    use_fixture(scenario_world, context)


def after_step(context, step):
    # behave writes step.error_message only after this hook: the diagnostics go through each report's own
    # attachment mechanism instead (support/run/reports.py).
    if step.status in (Status.failed, Status.error) and getattr(context, "world", None) is not None:
        attach_diagnostics(context, context.world.report_text())
