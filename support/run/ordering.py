"""``-D order=random``: shuffle features and the scenarios inside them, with a seed you can replay.

Isolation bugs hide behind a fixed order; a random one finds them, and the printed seed brings a failing
order back (``-D order=random -D seed=<n>``).

behave runs a feature's ``run_items`` (its scenarios, outlines and rules), not its ``scenarios`` list, which is
a second list of the same objects: shuffling only ``scenarios`` left every feature's scenarios in file order.
Both are shuffled alike here, so reports that read either see the order that ran.
"""

from __future__ import annotations

import random
from collections.abc import MutableSequence
from typing import Any


def shuffle_run(features: MutableSequence[Any], seed: int | None) -> int:
    """Shuffle ``features`` in place, and each one's scenarios; return the seed used."""
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    rng.shuffle(features)
    for feature in features:
        _shuffle_container(feature, rng)
    return seed


def _shuffle_container(container: Any, rng: random.Random) -> None:
    """Shuffle what ``container`` (a feature or a rule) runs, and its ``scenarios`` list into the same order."""
    items = container.run_items
    rng.shuffle(items)
    position = {id(item): index for index, item in enumerate(items)}
    container.scenarios.sort(key=lambda scenario: position.get(id(scenario), len(items)))
    for item in items:
        if type(item).__name__ == "Rule":
            _shuffle_container(item, rng)
