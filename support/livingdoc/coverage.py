"""Which contract promises each scenario proves, from docs/contract-map.toml (issue 24).

The map names scenarios by their own tags, so the feature files carry no promise IDs; the living
documentation turns it round (scenario -> promises) to show the coverage next to each scenario, and keeps the
map's order for its contract page. ``.ci/contract-coverage.sh`` checks the map itself; this only reads it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import Promise

#: Where the map is, under the suite's base directory (the repository root).
MAP_PATH = Path("docs") / "contract-map.toml"


@dataclass
class ContractEntry:
    """One promise of the map: what it says, the scenario tags that prove it, or why none can."""

    promise: Promise
    tags: list[str] = field(default_factory=list)
    exempt: str = ""


@dataclass
class Contract:
    """The map, in its own order, and turned round: own tag -> the promises that scenario proves."""

    entries: list[ContractEntry] = field(default_factory=list)

    def promises_of(self, tag: str | None) -> list[Promise]:
        if tag is None:
            return []
        return [entry.promise for entry in self.entries if tag in entry.tags]

    @property
    def checked(self) -> int:
        return sum(1 for entry in self.entries if entry.tags)


def contract_from_map(data: Mapping[str, Any]) -> Contract:
    """The contract from the parsed map (promise ID -> ``summary``, ``scenarios``, ``exempt``, ``note``)."""
    entries = []
    for promise_id, table in data.items():
        if not isinstance(table, Mapping):
            continue
        entries.append(ContractEntry(Promise(promise_id, str(table.get("summary", ""))),
                                     [str(tag).lstrip("@") for tag in table.get("scenarios", [])],
                                     str(table.get("exempt", ""))))
    return Contract(entries)


def load_contract(base_dir: Path) -> Contract:
    """The map under ``base_dir``; an empty contract where there is none (the report then shows no coverage)."""
    path = base_dir / MAP_PATH
    if not path.is_file():
        return Contract()
    return contract_from_map(tomllib.loads(path.read_text(encoding="utf-8")))
