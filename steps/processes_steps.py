"""The processes room's steps (steps/processes/): behave loads this file, importing them registers their steps."""

from steps.processes import (  # noqa: F401  # imported for their step definitions
    counters,
    halls,
    instances,
    live_channel,
    outages,
    overload,
    own_processors,
    silence,
)
