"""``-D order=random``: shuffle features and the scenarios inside them, with a seed you can replay.

Isolation bugs hide behind a fixed order; a random one finds them, and the printed seed brings a failing
order back (``-D order=random -D seed=<n>``).
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
        rng.shuffle(feature.scenarios)
    return seed
