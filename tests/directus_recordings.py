"""The recorded answers of real Directus (``fixtures/directus/``) and what each recorded question was.

Shared by the replay test (the stand-in answers as Directus did) and the client test (the Processor reads
each answer right). The recorder trimmed long bodies, sometimes before ``extensions.code``; :func:`recorded_code`
then infers the code from the message, which only Directus's ``ForbiddenError`` writes that way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "directus"
VERSIONS = ("11.17.4", "12.4.0")

USER_A = "006e1ac8-949c-4d58-9644-e218e245b8ae"
USER_B = "70ebca57-48c2-4f49-8f75-06bd8e8c43b6"
EVENT_1 = "11111111-1111-4111-8111-111111111111"
EVENT_2 = "22222222-2222-4222-8222-222222222222"

#: Questions that make sessions (logins, logout, refresh): the stand-in makes them with ``sign_in``,
#: ``revoke`` and ``refresh`` instead, so they are set-up, not replayed.
SET_UP_ONLY = {
    "POST /auth/login mode=session (A)", "POST /auth/login mode=session (B)", "POST /auth/login mode=json (A)",
    "POST /auth/logout mode=session", "POST /auth/refresh mode=session",
}

_CODE = re.compile(r'"code":"([A-Z_]+)"')


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text())


def recordings() -> list[tuple[str, dict[str, Any]]]:
    """Every recorded entry as (version, entry); the documented answers count for both versions."""
    documented = load("documented.json")
    out = []
    for version in VERSIONS:
        out += [(version, entry) for entry in load(f"directus-{version}.json")]
        out += [(version, entry) for entry in documented]
    return out


def recorded_code(entry: dict[str, Any]) -> str | None:
    """``errors[0].extensions.code`` of a recorded answer (None for a success)."""
    if entry["status"] < 400:
        return None
    found = _CODE.search(entry["body"])
    if found:
        return found.group(1)
    if entry["body"].startswith('{"errors":[{"message":"You don\'t have permission'):
        return "FORBIDDEN"  # trimmed before the code; only ForbiddenError writes this message
    raise AssertionError(f"cannot tell the code of recorded case {entry['case']!r}")
