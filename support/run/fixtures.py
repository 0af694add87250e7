"""behave fixtures: the run's services and Processor, and each scenario's world.

``environment.py`` only wires these to hooks. A fixture's clean-up runs whatever happened before it (a
failing step, an error in a hook, Ctrl-C), which is what guarantees nothing is left behind.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

from behave import fixture
from behave.runner import Context

from ..scenario.world import World
from ..services import ServicesUnavailable
from .ordering import shuffle_run
from .settings import Settings
from .shard_model import keep_shard, runs_anything
from .shards import load_durations
from .suite import Suite


def say(message: str) -> None:
    """Print outside behave's output capture, so the run's header and reasons are always seen."""
    stdout = sys.__stdout__
    assert stdout is not None  # a test runner always has the interpreter's own stdout
    stdout.write(message.rstrip("\n") + "\n")
    stdout.flush()


@fixture  # type: ignore[untyped-decorator]  # behave ships no type information
def run_shard(context: Context) -> Iterator[None]:
    """``-D shard=i/n``: keep only shard i's scenarios in the run (support/run/shards.py says how they split)."""
    settings: Settings = context.settings
    if settings.shard is not None:
        # behave offers no public way to narrow the run from a hook: its runner's list, in place
        say(keep_shard(context._runner.features, context.config, *settings.shard, load_durations()))
    yield


@fixture  # type: ignore[untyped-decorator]  # behave ships no type information
def run_order(context: Context) -> Iterator[None]:
    settings: Settings = context.settings
    if settings.order == "random":
        seed = shuffle_run(context._runner.features, settings.seed)
        say(f"scenario order: random, seed {seed} (replay with -D order=random -D seed={seed})")
    yield


@fixture  # type: ignore[untyped-decorator]  # behave ships no type information
def live_services(context: Context) -> Iterator[Suite | None]:
    """Start services, schema, CMS stub and Processor; or record why the run is skipped."""
    context.skip_reason = None
    context.reset_seconds = []
    if not runs_anything(context._runner.features, context.config):  # e.g. a shard of more shards than scenarios
        context.suite = None
        say("no scenario to run here: no services started")
        yield None
        return
    suite = Suite(context.settings)
    context.suite = suite
    try:
        suite.start()
    except ServicesUnavailable as exc:
        suite.stop()
        if context.settings.require_services:
            raise RuntimeError(f"services are required (-D require_services=true) but {exc}") from None
        context.skip_reason = f"{exc}"
        say(f"SKIPPING every scenario: {exc}")
        yield None
        return
    except BaseException:
        suite.stop()
        raise
    say(suite.describe())
    try:
        yield suite
    finally:
        suite.stop()
        if suite.chromium.launch_seconds is not None:
            say(f"Chromium (for @browser) launched in {suite.chromium.launch_seconds:.2f} s")
        resets = context.reset_seconds
        if resets:
            say(f"per-scenario set-up and clean-up: median {1000 * sorted(resets)[len(resets) // 2]:.1f} ms "
                f"over {len(resets)} scenarios")


@fixture  # type: ignore[untyped-decorator]  # behave ships no type information
def scenario_world(context: Context) -> Iterator[World]:
    began = time.monotonic()
    world = World(context.suite)
    context.world = world
    reset = time.monotonic() - began
    yield world
    began = time.monotonic()
    context.suite.run(world.clean_up())
    context.reset_seconds.append(reset + time.monotonic() - began)


def browser_missing(context: Context, tags: list[str] | set[str]) -> str | None:
    """Why a @browser scenario cannot run here (no Chromium), or None. Said once per run; with
    ``-D require_browser=true`` (CI) a missing browser fails the run instead of skipping."""
    if "browser" not in tags or not context.suite.browser_missing:
        return None
    reason = f"@browser: {context.suite.browser_missing}"
    if context.settings.require_browser:
        raise RuntimeError(f"a browser is required (-D require_browser=true, the default under CI=true) but {reason}")
    if not context.suite.browser_skip_said:  # on the suite: behave drops what a hook sets on the context
        context.suite.browser_skip_said = True
        say(f"SKIPPING the @browser scenarios: {context.suite.browser_missing}")
    return reason
