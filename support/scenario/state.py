"""What one scenario's steps remember for later steps, kept by type: each feature owns the class of its state.

A step keeps nothing on behave's ``context``; it asks the scenario's world for its feature's state,
``world.state(LoadRun, lambda: LoadRun(world))``, which is made on first use and is the same object for the rest of
the scenario. The class lives in the module of the feature that uses it, so a new feature adds a class, not a field
to a shared one, and a fresh world per scenario means nothing leaks into the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

S = TypeVar("S")


class MissingState(AssertionError):
    """A step asked for state that no earlier step of the scenario set up."""


class ScenarioState:
    """One object per type, for the length of one scenario."""

    def __init__(self) -> None:
        self._objects: dict[type[Any], object] = {}

    def get(self, kind: type[S], make: Callable[[], S] | None = None) -> S:
        """The scenario's ``kind``: made by ``make`` the first time; without ``make``, one an earlier step made."""
        if kind not in self._objects:
            if make is None:
                raise MissingState(f"no {kind.__name__} in this scenario: the step that sets it up has not run")
            self._objects[kind] = make()
        found = self._objects[kind]
        if not isinstance(found, kind):
            raise TypeError(f"the scenario's {kind.__name__} is a {type(found).__name__}")
        return found

    def find(self, kind: type[S]) -> S | None:
        """The scenario's ``kind`` if a step made one, else ``None`` (for steps that work with or without it)."""
        return self.get(kind) if kind in self._objects else None
