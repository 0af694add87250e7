"""Contract coverage (issue 24): is every promise of docs/processor.md checked by a scenario that fails when the
Processor breaks it?

Three files answer that together, and this program keeps them honest with each other:

* ``docs/processor.md`` marks each promise with a short, stable ID (an HTML anchor around the ID in code type,
  ``<a id="ws.subscribe.limit">`` + the ID + ``</a>``), so a reader can cite it and a program can find it;
* ``docs/contract-map.toml`` says, per ID, which scenarios check it (by each scenario's own tag, so feature
  files, which product owners read, carry no technical IDs), or why no black box can observe it;
* ``docs/coverage.md`` is generated from the two: promise -> scenarios, and what is still unchecked.

Without ``--write`` it checks; it fails when a promise has neither a scenario nor an exemption, when the map
names a promise the contract no longer has (or lacks one it has), when it names a scenario tag that is not
exactly one scenario's own, when exemptions exceed one promise in ten, or when docs/coverage.md is not what the
map generates. ``--write`` regenerates docs/coverage.md first. Either way the last line is
``contract: <N> promises, <C> checked, <E> exempt, <U> unchecked``.

The functions below take text and parsed data, not paths, so each rule can be tested on its own.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CONTRACT = REPO / "docs" / "processor.md"
MAP = REPO / "docs" / "contract-map.toml"
COVERAGE = REPO / "docs" / "coverage.md"
FEATURES = REPO / "features"
#: The command that regenerates docs/coverage.md, as failures name it.
WRITE_COMMAND = "bash .ci/contract-coverage.sh --write"

#: Exemptions are for what no black box can observe; more than this share of the promises means the word is abused.
MAX_EXEMPT_SHARE = 0.10
#: A promise ID: lower-case dotted words, at least two (the first names the section's subject).
ID_SHAPE = re.compile(r"[a-z][a-z0-9-]*(?:\.[a-z0-9][a-z0-9-]*)+")
#: The one marker syntax: an anchor whose id is the ID, around the ID in code type.
MARKER = re.compile(r'<a id="(?P<id>[^"]*)">`(?P<text>[^`]*)`</a>')
#: Anything that starts like an anchor with an id, to catch markers written another way.
ANCHOR_START = re.compile(r"<a\s+id\s*=", re.IGNORECASE)
SECTION = re.compile(r"^## +(?P<title>\S.*?)\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
#: Keys a table of the map may have.
MAP_KEYS = {"summary", "scenarios", "exempt", "note"}

CHECKED, EXEMPT, UNCHECKED = "checked", "exempt", "unchecked"


@dataclass(frozen=True)
class Promise:
    """One marked promise: its ID, the section it is in (``"4. WebSocket protocol (`/live`)"``), its line."""

    id: str
    section: str
    line: int


@dataclass(frozen=True)
class MapEntry:
    """One table of the map, as written (validated by :func:`parse_map`)."""

    summary: str
    scenarios: tuple[str, ...] = ()
    exempt: str | None = None
    note: str | None = None

    @property
    def status(self) -> str:
        """Checked wins over exempt only in theory: :func:`parse_map` refuses a table with both."""
        if self.scenarios:
            return CHECKED
        if self.exempt:
            return EXEMPT
        return UNCHECKED


@dataclass(frozen=True)
class Scenario:
    """Where a scenario's own tag points: its feature file (relative to the repository) and its name."""

    path: str
    name: str


@dataclass
class Outcome:
    """What :func:`check` found: the problems (each one line, for CI's log) and the counts of the last line."""

    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary_line(self) -> str:
        return (f"contract: {self.total} promises, {self.counts[CHECKED]} checked, {self.counts[EXEMPT]} exempt, "
                f"{self.counts[UNCHECKED]} unchecked")


# -- reading ----------------------------------------------------------------------------------------------------

def parse_contract(text: str) -> tuple[list[Promise], list[str]]:
    """The promises marked in the contract's text, in document order, and any malformed or repeated marker.

    Markers inside code blocks are refused: they would show as raw HTML there, and a citable ID must be visible.
    """
    promises: list[Promise] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    section = "(before the first section)"
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and (heading := SECTION.match(line)):
            section = heading["title"]
        markers = list(MARKER.finditer(line))
        if len(ANCHOR_START.findall(line)) != len(markers):
            problems.append(f"docs/processor.md:{number}: an anchor that is not a promise marker "
                            f'(write <a id="ID">`ID`</a>)')
        for marker in markers:
            pid = marker["id"]
            if in_fence:
                problems.append(f"docs/processor.md:{number}: promise {pid} is marked inside a code block")
            if marker["text"] != pid:
                problems.append(f"docs/processor.md:{number}: the marker of {pid} shows {marker['text']!r}")
            if not ID_SHAPE.fullmatch(pid):
                problems.append(f"docs/processor.md:{number}: {pid!r} is not a promise ID (lower-case dotted words)")
            if pid in seen:
                problems.append(f"docs/processor.md:{number}: promise {pid} is marked twice (first on line "
                                f"{seen[pid]})")
                continue
            seen[pid] = number
            promises.append(Promise(pid, section, number))
    return promises, problems


def parse_map(data: Mapping[str, Any]) -> tuple[dict[str, MapEntry], list[str]]:
    """The map's tables (``tomllib`` keeps their order), and whatever in them is not as the map's header says."""
    entries: dict[str, MapEntry] = {}
    problems: list[str] = []
    for pid, table in data.items():
        where = f"docs/contract-map.toml [\"{pid}\"]"
        if not isinstance(table, dict):
            problems.append(f"{where}: not a table (quote the ID: [\"{pid}\"])")
            continue
        unknown = sorted(set(table) - MAP_KEYS)
        if unknown:
            problems.append(f"{where}: unknown keys {unknown} (known: {sorted(MAP_KEYS)})")
        summary = table.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            problems.append(f"{where}: needs a one-line summary")
            summary = ""
        scenarios = table.get("scenarios", [])
        if not isinstance(scenarios, list) or not all(isinstance(tag, str) and tag for tag in scenarios):
            problems.append(f"{where}: scenarios must be a list of scenario tags (without @)")
            scenarios = []
        if any(tag.startswith("@") for tag in scenarios):
            problems.append(f"{where}: write scenario tags without @")
        twice = sorted(tag for tag, n in Counter(scenarios).items() if n > 1)
        if twice:
            problems.append(f"{where}: names {twice} twice")
        exempt = table.get("exempt")
        if exempt is not None and (not isinstance(exempt, str) or not exempt.strip()):
            problems.append(f"{where}: an exemption must say why no black box can observe the promise")
            exempt = None
        if exempt and scenarios:
            problems.append(f"{where}: both checked and exempt: a promise a scenario checks needs no exemption")
        note = table.get("note")
        if note is not None and not isinstance(note, str):
            problems.append(f"{where}: note must be text")
            note = None
        entries[pid] = MapEntry(summary, tuple(tag.lstrip("@") for tag in scenarios), exempt, note)
    return entries, problems


def _scenarios_of(container: Any) -> Iterator[Any]:
    """Every scenario and scenario outline of a feature, including those inside rules."""
    yield from container.scenarios
    for rule in getattr(container, "rules", None) or []:
        yield from _scenarios_of(rule)


def scenario_tags(feature_paths: Iterable[Path], root: Path = REPO) -> tuple[dict[str, Scenario], Counter[str]]:
    """Each scenario's own tag (a tag on exactly one scenario or outline), and on how many scenarios each tag is.

    Read with behave's own Gherkin parser, so the map sees features exactly as behave runs them.
    """
    from behave.parser import parse_file  # behave is only in the venvs; imported here so the rest stays testable

    owners: dict[str, list[Scenario]] = {}
    for path in sorted(feature_paths):
        feature = parse_file(str(path))
        if feature is None:  # an empty file
            continue
        where = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        for scenario in _scenarios_of(feature):
            for tag in {str(tag) for tag in scenario.tags}:
                owners.setdefault(tag, []).append(Scenario(where, scenario.name))
    counts = Counter({tag: len(found) for tag, found in owners.items()})
    own = {tag: found[0] for tag, found in owners.items() if len(found) == 1}
    return own, counts


# -- checking ---------------------------------------------------------------------------------------------------

def check(promises: Sequence[Promise], entries: Mapping[str, MapEntry], own_tags: Mapping[str, Scenario],
          tag_counts: Mapping[str, int]) -> Outcome:
    """Every rule of the gate but docs/coverage.md's freshness (see :func:`main`); counts each promise's status."""
    outcome = Outcome()
    problems = outcome.problems
    in_doc = {promise.id: promise for promise in promises}
    for promise in promises:
        if promise.id not in entries:
            problems.append(f"promise {promise.id} (docs/processor.md:{promise.line}) has no table in "
                            f"docs/contract-map.toml")
    for pid in entries:
        if pid not in in_doc:
            problems.append(f"docs/contract-map.toml names {pid}, which docs/processor.md no longer has")
    mapped = [pid for pid in entries if pid in in_doc]
    ordered = [promise.id for promise in promises if promise.id in entries]
    if mapped != ordered:
        first = next(a for a, b in zip(mapped, ordered, strict=True) if a != b)
        problems.append(f"docs/contract-map.toml is not in the order of docs/processor.md: {first} comes too "
                        f"early (keep the tables in the document's order)")
    for pid, entry in entries.items():
        for tag in entry.scenarios:
            if tag in own_tags:
                continue
            if tag_counts.get(tag, 0) == 0:
                problems.append(f"docs/contract-map.toml [\"{pid}\"] names @{tag}, which no scenario in features/ has")
            else:
                problems.append(f"docs/contract-map.toml [\"{pid}\"] names @{tag}, which is on {tag_counts[tag]} "
                                f"scenarios: name a scenario's own tag")
    unchecked: list[str] = []
    for promise in promises:
        mapped_entry = entries.get(promise.id)
        status = mapped_entry.status if mapped_entry is not None else UNCHECKED
        outcome.counts[status] += 1
        if status == UNCHECKED:
            unchecked.append(promise.id)
    outcome.counts.update({CHECKED: 0, EXEMPT: 0, UNCHECKED: 0})  # all three present, even at zero
    exempt = outcome.counts[EXEMPT]
    if promises and exempt > MAX_EXEMPT_SHARE * len(promises):
        problems.append(f"{exempt} of {len(promises)} promises are exempt: at most {MAX_EXEMPT_SHARE:.0%} may be "
                        f"(an exemption is only for what no black box can observe)")
    if unchecked:
        problems.append(f"{len(unchecked)} promises have neither a scenario that checks them nor an exemption "
                        f"(docs/coverage.md, \"Unchecked\"):")
        problems.extend(_wrapped(unchecked, indent="  "))
    return outcome


def _wrapped(words: Sequence[str], *, indent: str, width: int = 116) -> list[str]:
    """``words`` joined with commas into lines of at most ``width`` characters."""
    lines: list[str] = []
    line = indent
    for index, word in enumerate(words):
        piece = word + ("," if index < len(words) - 1 else "")
        if line.strip() and len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = indent
        line += ("" if not line.strip() else " ") + piece
    if line.strip():
        lines.append(line)
    return lines


# -- docs/coverage.md -------------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _link(pid: str) -> str:
    return f"[`{pid}`](processor.md#{pid})"


def render_coverage(promises: Sequence[Promise], entries: Mapping[str, MapEntry],
                    own_tags: Mapping[str, Scenario]) -> str:
    """docs/coverage.md: counts, one table per contract section, then the unchecked and the exempt promises.

    Deterministic (no dates, no line numbers), so the gate can compare it with the file byte for byte and a
    change to the map shows in review as a change to this page.
    """
    counts = Counter(entries[p.id].status if p.id in entries else UNCHECKED for p in promises)
    lines = [
        "# Contract coverage",
        "",
        "Every promise of [the contract](processor.md), each with the scenarios that fail when the Processor breaks",
        "it. Generated from [`contract-map.toml`](contract-map.toml) by `" + WRITE_COMMAND + "`; do not edit it by",
        "hand. A scenario is listed only if it fails when the promise is broken; the map's notes say which step",
        "checks it where that is not obvious.",
        "",
        f"**{len(promises)} promises: {counts[CHECKED]} checked, {counts[EXEMPT]} exempt, {counts[UNCHECKED]} "
        f"unchecked.**",
    ]
    sections: dict[str, list[Promise]] = {}
    for promise in promises:
        sections.setdefault(promise.section, []).append(promise)
    for section, members in sections.items():
        done = sum(1 for p in members if p.id in entries and entries[p.id].status == CHECKED)
        lines += ["", f"## {section}", "", f"{done} of {len(members)} checked.", "",
                  "| ID | promise | scenarios | status |", "| --- | --- | --- | --- |"]
        for promise in members:
            entry = entries.get(promise.id, MapEntry(summary="(not in the map)"))
            tags = ", ".join(
                f"[`@{tag}`](../{own_tags[tag].path})" if tag in own_tags else f"`@{tag}` (no such scenario)"
                for tag in entry.scenarios)
            lines.append(f"| {_link(promise.id)} | {_cell(entry.summary)} | {tags} | {entry.status} |")
    unchecked = [p for p in promises if p.id not in entries or entries[p.id].status == UNCHECKED]
    lines += ["", "## Unchecked", ""]
    if not unchecked:
        lines.append("None.")
    for promise in unchecked:
        entry = entries.get(promise.id, MapEntry(summary="(not in the map)"))
        why = f" ({_cell(entry.note)})" if entry.note else ""
        lines.append(f"- {_link(promise.id)}: {entry.summary}{why}")
    exempt = [p for p in promises if p.id in entries and entries[p.id].status == EXEMPT]
    lines += ["", "## Exempt (with reasons)", ""]
    if not exempt:
        lines.append("None.")
    for promise in exempt:
        entry = entries[promise.id]
        lines.append(f"- {_link(promise.id)}: {entry.summary}. Why no black box can observe it: {entry.exempt}")
    return "\n".join(lines) + "\n"


# -- the gate ---------------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """Check (or ``--write`` docs/coverage.md, then check); print the problems, then the summary line last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="regenerate docs/coverage.md from the map first")
    args = parser.parse_args(argv)

    promises, problems = parse_contract(CONTRACT.read_text(encoding="utf-8"))
    try:
        data = tomllib.loads(MAP.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"docs/contract-map.toml cannot be read: {exc}")
        data = {}
    entries, map_problems = parse_map(data)
    problems += map_problems
    try:
        own_tags, tag_counts = scenario_tags(FEATURES.glob("**/*.feature"))
    except ImportError:
        problems.append(f"behave is not installed for {sys.executable} (set PYTHON to the venv's python)")
        own_tags, tag_counts = {}, Counter()

    coverage = render_coverage(promises, entries, own_tags)
    if args.write:
        COVERAGE.write_text(coverage, encoding="utf-8")
        print(f"contract: wrote {COVERAGE.relative_to(REPO)}")
    elif not COVERAGE.exists() or COVERAGE.read_text(encoding="utf-8") != coverage:
        problems.append(f"docs/coverage.md is not what docs/contract-map.toml generates: run `{WRITE_COMMAND}`")

    outcome = check(promises, entries, own_tags, tag_counts)
    outcome.problems[:0] = problems
    for problem in outcome.problems:
        print(problem if problem.startswith("  ") else f"contract: {problem}")
    print(outcome.summary_line())
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    sys.exit(main())
