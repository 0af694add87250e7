"""Exponential backoff, 0.1 s doubling to 5 s, as the contract prescribes for reconnections."""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.delay = initial

    def next(self) -> float:
        """The delay to wait now; the following one doubles up to the maximum."""
        delay = self.delay
        self.delay = min(self.delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.delay = self.initial
