"""The processes room's steps (steps/processes/): behave loads this file, importing them registers their steps."""

from steps.processes import (  # noqa: F401  # imported for their step definitions
    backlog,
    counters,
    counting,
    dependencies,
    halls,
    instances,
    live_channel,
    outages,
    overload,
    own_processors,
    second_service,
    services,
    shutdown,
    silence,
    slow_fans,
    start_up,
)
