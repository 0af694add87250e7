"""``-D shard=i/n``: which scenarios shard ``i`` of ``n`` runs, the same on every machine, balanced by time.

Pure logic (no behave here: support/run/shard_model.py applies it to behave's model). A CI system spreads the
suite over ``n`` machines, each running ``behave -D shard=i/n``; the parallel runner (support/run/parallel.py)
does the same with ``n`` processes on one machine. Both need the shards to run every scenario exactly once
together, so the split depends only on what every machine has alike: the feature files, the run's selection
(tags, names) and the committed durations (support/run/durations.json), never on the order, the clock or a seed.

The unit is a scenario, or a whole Scenario Outline (its rows share set-up and run side by side, and a row's
name changes with its table). Its key is the feature file and the scenario's name, which survive edits to
other scenarios (line numbers do not). Units are spread by greedy longest-processing-time: heaviest first, each
to the shard with the least estimated time so far, ties broken by the key and the shard's number; a unit with no
measured duration weighs the median of those measured. Two kinds of unit are kept together:

* ``@needs-service-control`` scenarios stop and restart Redis or PostgreSQL, so they cannot share services with
  another process: all go to shard 1, which the parallel runner gives services of its own;
* ``@browser`` scenarios share one Chromium per process (about 2 s to launch, and much memory): one block.

A unit the run's selection leaves out (``not @load`` by default) weighs nothing but still belongs to one
shard, so the shards' "skipped" counts add up to a single run's too.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Scenarios that stop and restart the services: all in shard 1 (the parallel runner gives it services of its own).
PINNED_TO_FIRST = "needs-service-control"
#: Tags whose scenarios stay together in one shard (one Chromium per process).
KEPT_TOGETHER = ("browser",)
#: The committed measured durations, by unit key (written by ``python -m support.run.durations``).
DURATIONS_FILE = Path(__file__).with_name("durations.json")
#: What a unit weighs when nothing is measured at all (an empty or missing durations file).
DEFAULT_SECONDS = 1.0


class ShardError(ValueError):
    """``-D shard`` is not ``i/n`` with 1 ≤ i ≤ n; the message says what was given."""


@dataclass(frozen=True)
class Unit:
    """One scenario or Scenario Outline, as the split sees it."""

    #: ``<feature file>::<scenario name>``, the file relative to the repository (see :func:`unit_key`).
    key: str
    tags: frozenset[str] = frozenset()
    #: Whether the run's selection (tags, names, locations) runs it; an unselected unit weighs nothing.
    selected: bool = True


def unit_key(feature_file: str, name: str) -> str:
    """The stable key of a unit: its feature file (as given, relative to the repository) and its name."""
    return f"{feature_file}::{name}"


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/5"`` -> ``(2, 5)``; raise :class:`ShardError` for anything else (shards count from 1)."""
    index_text, slash, count_text = text.strip().partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index = count = 0
    if not slash or count < 1 or not 1 <= index <= count:
        raise ShardError(f"-D shard must be i/n with 1 <= i <= n (e.g. 2/3), got {text!r}")
    return index, count


def load_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """The measured seconds of each unit key; empty when the file is missing (every unit then weighs the same)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(key): float(seconds) for key, seconds in data.get("seconds", {}).items()}


def weights(units: Sequence[Unit], durations: Mapping[str, float]) -> dict[str, float]:
    """Each unit's estimated seconds: measured, else the median measured, and 0 for an unselected unit."""
    known = [seconds for seconds in durations.values() if seconds >= 0]
    fallback = statistics.median(known) if known else DEFAULT_SECONDS
    return {unit.key: (durations.get(unit.key, fallback) if unit.selected else 0.0) for unit in units}


@dataclass(frozen=True)
class _Block:
    """Units placed together: one unit, or every unit of a kept-together tag."""

    keys: tuple[str, ...]
    seconds: float


def _blocks(units: Sequence[Unit], weight: Mapping[str, float]) -> tuple[_Block | None, list[_Block]]:
    """The block pinned to shard 1 (if any), and the others."""
    pinned: list[str] = []
    together: dict[str, list[str]] = {tag: [] for tag in KEPT_TOGETHER}
    singles: list[str] = []
    for unit in units:
        if PINNED_TO_FIRST in unit.tags:
            pinned.append(unit.key)
        elif tag := next((tag for tag in KEPT_TOGETHER if tag in unit.tags), None):
            together[tag].append(unit.key)
        else:
            singles.append(unit.key)

    def block(keys: Iterable[str]) -> _Block:
        ordered = tuple(sorted(keys))
        return _Block(ordered, sum(weight[key] for key in ordered))

    others = [block([key]) for key in singles] + [block(keys) for keys in together.values() if keys]
    return (block(pinned) if pinned else None), others


def assign(units: Sequence[Unit], count: int, durations: Mapping[str, float]) -> list[list[str]]:
    """Split ``units`` into ``count`` shards (index 0 is shard 1); each shard's keys sorted.

    Deterministic: the result depends only on the units (keys, tags, selection) and ``durations``, not on the
    order of ``units``. Raise :class:`ValueError` for a repeated key: the split could not tell them apart."""
    if count < 1:
        raise ValueError(f"at least one shard, got {count}")
    keys = [unit.key for unit in units]
    if len(set(keys)) != len(keys):
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"units with the same key cannot be told apart: {', '.join(repeated)}")
    weight = weights(units, durations)
    pinned, others = _blocks(units, weight)
    shards: list[list[str]] = [[] for _ in range(count)]
    load = [0.0] * count
    if pinned is not None:
        shards[0].extend(pinned.keys)
        load[0] += pinned.seconds
    for block in sorted(others, key=lambda block: (-block.seconds, block.keys)):
        lightest = min(range(count), key=lambda index: (load[index], index))
        shards[lightest].extend(block.keys)
        load[lightest] += block.seconds
    return [sorted(shard) for shard in shards]


def estimate(keys: Iterable[str], units: Sequence[Unit], durations: Mapping[str, float]) -> float:
    """The estimated seconds of the units ``keys`` names (for the shard's line in the run's header)."""
    weight = weights(units, durations)
    return sum(weight[key] for key in keys)
