"""Writes the living documentation with Jinja2 templates (templates/), one folder per view.

* ``<directory>/``: the owner's view: the specification in words, outcomes and the contract coverage, with no
  file locations and no tags (the feature files' readers never need them);
* ``<directory>/dev/``: the developer's view: the same pages with every tag, ``file:line`` of each scenario and
  step, the step definition that matched, step durations and tracebacks.

Each page is self-contained (its style inline, no script, no network), so the folder can be opened from disk,
copied, or kept as a CI artifact. Folding is plain ``<details>``, which every browser opens without script.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import markupsafe
from markdown_it import MarkdownIt

from .coverage import Contract
from .model import FeatureDoc, RunInfo, ScenarioDoc, totals

TEMPLATES = Path(__file__).parent / "templates"
#: The specification's vocabulary (issue 22): owners reading the report look words up there.
GLOSSARY = Path(__file__).resolve().parents[2] / "features" / "GLOSSARY.md"
#: view -> its folder under the report directory, and the way from there to the other view's folder.
VIEWS = {"owner": ("", "dev/"), "dev": ("dev", "../")}


def format_duration(seconds: float | None) -> str:
    """``0.42 s``, ``12.3 s``, ``2 min 05 s``; empty when nothing was timed (a dry run, a step not run)."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def paragraphs(lines: list[str]) -> list[str]:
    """A description's lines as paragraphs: a blank line separates them, as in the feature file."""
    result: list[str] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            result.append(" ".join(current))
            current = []
    return result


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["duration"] = format_duration
    env.filters["paragraphs"] = paragraphs
    return env


def glossary_html(source: Path = GLOSSARY) -> markupsafe.Markup | None:
    """The glossary rendered from its Markdown (CommonMark, raw HTML in it left escaped), or ``None`` without one."""
    try:
        text = source.read_text(encoding="utf-8")
    except OSError:
        return None
    return markupsafe.Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


def _clear(folder: Path) -> None:
    """Remove the pages of an earlier report here, so a renamed feature leaves no stale page behind."""
    for page in folder.glob("*.html"):
        page.unlink()


def write_report(directory: Path, run: RunInfo, features: list[FeatureDoc], contract: Contract,
                 by_tag: dict[str, tuple[FeatureDoc, ScenarioDoc]]) -> list[Path]:
    """Write the index, a page per feature and the contract page, for both views; return the files written."""
    env = _environment()
    glossary = glossary_html()
    written = []
    for view, (folder, other_view) in VIEWS.items():
        out = directory / folder
        out.mkdir(parents=True, exist_ok=True)
        _clear(out)
        common = {"run": run, "features": features, "totals": totals(features), "dev": view == "dev",
                  "other_view": other_view, "contract": contract, "by_tag": by_tag, "glossary": glossary}
        pages: list[tuple[str, str, dict[str, object]]] = [
            ("index.html", "index.html.j2", {}), ("contract.html", "contract.html.j2", {})]
        if glossary is not None:
            pages.append(("glossary.html", "glossary.html.j2", {}))
        pages += [(feature.page, "feature.html.j2", {"feature": feature, "number": number})
                  for number, feature in enumerate(features, start=1)]
        for name, template, extra in pages:
            target = out / name
            target.write_text(env.get_template(template).render(page=name, **common, **extra), encoding="utf-8")
            written.append(target)
    return written
