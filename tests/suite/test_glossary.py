"""features/GLOSSARY.md and the feature files agree: every word the glossary defines is used by the specification
(issue 22: "every word of the glossary is used"). A word defined but never used is either a stale entry or a
sign that the scenarios say it with another word."""

from __future__ import annotations

import re
from pathlib import Path

FEATURES = Path(__file__).resolve().parents[2] / "features"
#: Defined terms the feature files use in another grammatical form only.
FORMS = {"falls behind": ("fell behind", "falls too far behind")}


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).lower()


def defined_terms() -> list[str]:
    """The glossary's defined words: its bold phrases."""
    return [_flat(term) for term in re.findall(r"\*\*([^*]+)\*\*", (FEATURES / "GLOSSARY.md").read_text())]


def test_the_glossary_defines_the_words_of_the_story() -> None:
    assert len(defined_terms()) >= 30
    assert {"fan", "race control", "orphan", "faulty", "correction", "tracker"} <= set(defined_terms())


def test_every_word_of_the_glossary_is_used_by_the_specification() -> None:
    spec = _flat(" ".join(path.read_text() for path in sorted(FEATURES.glob("*.feature"))))
    unused = [term for term in defined_terms() if not any(form in spec for form in (term, *FORMS.get(term, ())))]
    assert not unused, f"the glossary defines words no feature uses: {unused}"


#: Words an owner should not meet in a step (issue 22): the services' technical parts, protocol terms, close codes
#: (docs/processor.md, "Close codes") and units. Services are told apart by their hall, never by a letter.
TECHNICAL = re.compile(
    r"\bProcessors? ([PQW]|north|south)\b"
    r"|\b(redis|streams?|pending|batch(es)?|queues?|consumers?|json|sql|frames?|websockets?|https?|sub-protocols?"
    r"|healthz|close codes?|KiB|milliseconds?)\b"
    r"|(?<![\d.,])(1000|1001|1008|1009|1011|1013)(?![\d]|[.,]\d)",  # a code, not part of 19.1011 or 1,013
    re.IGNORECASE)
STEP = re.compile(r"^\s*(Given|When|Then|And|But)\b")


def test_no_step_speaks_of_the_technical_parts() -> None:
    found = [f"{path.name}:{number}: {line.strip()}"
             for path in sorted(FEATURES.glob("*.feature"))
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if STEP.match(line) and TECHNICAL.search(line)]
    assert not found, "steps with technical words (say it in the glossary's words):\n" + "\n".join(found)
