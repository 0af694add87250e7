"""The split of support/run/shards.py applied to behave's model of the run: the units of the parsed features,
and keeping only one shard's.

Called from ``before_all`` (support/run/fixtures.py): behave has parsed every feature and built its tag
selection by then, but has not yet shown a feature to its formatters and reporters, so removing the other
shards' scenarios from the model (in place, as support/run/ordering.py reorders it) makes behave's own totals,
JUnit and JSON count only this shard. Also used by the listing of ``python -m support.run.shard_check``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableSequence, Sequence
from pathlib import Path
from typing import Any

from .settings import REPO_ROOT
from .shards import Unit, assign, estimate, unit_key


def feature_file(filename: str) -> str:
    """The feature's file relative to the repository (POSIX), whatever path behave was given."""
    path = Path(filename)
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def containers(feature: Any) -> Iterator[Any]:
    """The feature and its rules: whatever holds scenarios in ``run_items``."""
    yield feature
    for item in feature.run_items:
        if _is_rule(item):
            yield from containers(item)


def run_units(container: Any) -> list[Any]:
    """The scenarios and outlines ``container`` itself runs (its rules' are their own)."""
    return [item for item in container.run_items if not _is_rule(item)]


def unit_tags(item: Any) -> frozenset[str]:
    """A unit's tags, inherited ones included, and for an outline also those of each ``Examples`` block: a row
    tagged ``@needs-service-control`` there needs the services of worker 1 like a tagged scenario (an outline
    is one unit, so the whole outline goes with it)."""
    tags = set(item.effective_tags)
    for examples in getattr(item, "examples", None) or ():
        tags.update(examples.tags)
    return frozenset(tags)


def units_of(features: Sequence[Any], config: Any) -> list[tuple[Unit, Any]]:
    """Every unit of ``features`` with its model object; ``selected`` as behave will decide (tags, names,
    ``file:line`` locations): ``Scenario.should_run`` covers all three."""
    found: list[tuple[Unit, Any]] = []
    for feature in features:
        file = feature_file(feature.filename)
        for container in containers(feature):
            for item in run_units(container):
                unit = Unit(unit_key(file, item.name), unit_tags(item), bool(item.should_run(config)))
                found.append((unit, item))
    return found


def runs_anything(features: Sequence[Any], config: Any) -> bool:
    """Whether the run's selection leaves any scenario of ``features`` to run (else it needs no services)."""
    return any(unit.selected for unit, _ in units_of(features, config))


def _is_rule(item: Any) -> bool:
    return type(item).__name__ == "Rule"


def holds_units(container: Any) -> bool:
    """Whether ``container`` (a feature or rule) or one of its rules still runs a scenario or outline."""
    return any(run_units(inner) for inner in containers(container))


def keep_only(features: MutableSequence[Any], keep: set[int]) -> None:
    """Remove every unit whose ``id()`` is not in ``keep`` from ``features`` (in place, from both of behave's
    lists, ``run_items`` which it runs and ``scenarios``), and every rule and feature left without a unit."""
    for feature in features:
        for container in reversed(list(containers(feature))):  # a rule before the feature holding it
            container.run_items[:] = [item for item in container.run_items
                                      if id(item) in keep or (_is_rule(item) and holds_units(item))]
            container.scenarios[:] = [item for item in container.scenarios if id(item) in keep]
    features[:] = [feature for feature in features if holds_units(feature)]


def keep_shard(features: MutableSequence[Any], config: Any, index: int, count: int,
               durations: Mapping[str, float]) -> str:
    """Keep only shard ``index`` of ``count`` in ``features`` (in place); return the run's line saying so."""
    units = units_of(features, config)
    plain = [unit for unit, _ in units]
    mine = set(assign(plain, count, durations)[index - 1])
    keep_only(features, {id(item) for unit, item in units if unit.key in mine})
    selected = sum(unit.selected for unit in plain if unit.key in mine)
    return (f"shard {index}/{count}: {selected} of {sum(unit.selected for unit in plain)} scenarios (outlines count "
            f"once), ~{estimate(mine, plain, durations):.0f} s estimated")
