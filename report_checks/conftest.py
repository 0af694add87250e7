"""The runs every report check reads, made once per session (runs.py)."""

from __future__ import annotations

import pytest

from report_checks.runs import REPO_ROOT, Run, broken_run, dry_run

#: The dry run's reports stay in the reports lane's folder: the specification as a reviewer can open it.
SPECIFICATION = REPO_ROOT / "reports" / "reports" / "specification"


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return broken_run(tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="session")
def dry() -> Run:
    SPECIFICATION.mkdir(parents=True, exist_ok=True)
    return dry_run(SPECIFICATION)
