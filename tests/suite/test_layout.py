"""The code's layout rules (issue 23), checked with ``ast`` so that they stay true (fast: no services, nothing run).

* support/ keeps its modules in rooms: at most 8 modules at its top level, and a docstring-only ``__init__.py``;
* no Python file in processor/, support/ or steps/ is longer than 400 lines;
* no import cycle among the modules of support/ and steps/ (nor of processor/), counting every import: those
  under ``if TYPE_CHECKING:`` and inside functions too;
* the suite is black-box: nothing in support/ or steps/ imports ``processor``;
* a step module imports support/, never another step module (only the thin ``steps/*_steps.py`` import rooms);
* every test module of tests/suite/ says what it covers in a docstring.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_TOP_LEVEL_MODULES = 8
MAX_LINES = 400
PACKAGES = ["support", "steps", "processor"]


def _python_files(package: str) -> list[Path]:
    return sorted(path for path in (REPO_ROOT / package).rglob("*.py") if "__pycache__" not in path.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: str) -> dict[str, Path]:
    """Every module of ``package``, by dotted name (a package by its own name)."""
    return {_module_name(path): path for path in _python_files(package)}


def _imported_names(path: Path, name: str) -> Iterator[str]:
    """The absolute names ``path`` (module ``name``) imports, anywhere in it; ``from a import b`` gives ``a.b``
    (which the caller resolves to ``a`` when ``b`` is not a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # ``from a import b`` names the module a.b, or a itself when b is not a module (the caller resolves
            # a.b to the longest known module): so ``from . import sibling`` is no edge to the package.
            yield from (base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names)


def _resolve(imported: str, known: dict[str, Path]) -> str | None:
    """The module of ``known`` that ``imported`` names: itself, or the longest package above it."""
    parts = imported.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _import_graph(*packages: str) -> dict[str, set[str]]:
    known = {name: path for package in packages for name, path in _modules(package).items()}
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {_resolve(imported, known) for imported in _imported_names(path, name)}
        graph[name] = {target for target in targets if target is not None and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _describe(cycle: list[str], graph: dict[str, set[str]]) -> str:
    members = set(cycle)
    return "; ".join(f"{name} -> {', '.join(sorted(graph[name] & members))}" for name in cycle)


# -- the rules ---------------------------------------------------------------------------------------------------

def test_support_keeps_its_modules_in_rooms() -> None:
    top = sorted(path.name for path in (REPO_ROOT / "support").glob("*.py") if path.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"support/ has {len(top)} modules at its top level: {top}"
    init = ast.parse((REPO_ROOT / "support" / "__init__.py").read_text(encoding="utf-8"))
    assert ast.get_docstring(init) and len(init.body) == 1, "support/__init__.py holds more than its docstring"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_python_file_is_longer_than_the_limit(package: str) -> None:
    lengths = {str(path.relative_to(REPO_ROOT)): len(path.read_text(encoding="utf-8").splitlines())
               for path in _python_files(package)}
    assert {path: n for path, n in lengths.items() if n > MAX_LINES} == {}, f"files over {MAX_LINES} lines"


@pytest.mark.parametrize("packages", [("support", "steps"), ("processor",)],
                         ids=["support+steps", "processor"])
def test_no_import_cycle(packages: tuple[str, ...]) -> None:
    graph = _import_graph(*packages)
    cycles = _cycles(graph)
    assert cycles == [], "import cycles: " + " | ".join(_describe(cycle, graph) for cycle in cycles)


def test_the_suite_never_imports_the_processor() -> None:
    offenders = {name: sorted(imported for imported in _imported_names(path, name)
                              if imported == "processor" or imported.startswith("processor."))
                 for package in ("support", "steps") for name, path in _modules(package).items()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_step_modules_import_support_not_each_other() -> None:
    loaders = {_module_name(path) for path in (REPO_ROOT / "steps").glob("*_steps.py")}
    crossing = {name: sorted(targets - _packages_above(name)) for name, targets in _import_graph("steps").items()
                if name not in loaders and targets - _packages_above(name)}
    assert crossing == {}, "step modules importing other step modules"


def _packages_above(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts))}


def test_every_suite_test_module_has_a_docstring() -> None:
    missing = [path.name for path in sorted((REPO_ROOT / "tests" / "suite").glob("*.py"))
               if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == []


# -- the checks themselves -----------------------------------------------------------------------------------------

def test_the_cycle_check_sees_an_import_under_type_checking(tmp_path: Path) -> None:
    """The rule counts annotation-only imports: a cycle closed under ``if TYPE_CHECKING:`` is still a cycle."""
    (tmp_path / "a.py").write_text("from b import B\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import A\n")
    known = {"a": tmp_path / "a.py", "b": tmp_path / "b.py"}
    graph = {name: {t for i in _imported_names(path, name) if (t := _resolve(i, known)) not in (None, name)}
             for name, path in known.items()}
    assert _cycles(graph) == [["a", "b"]]


def test_relative_imports_resolve_from_the_importing_package(tmp_path: Path) -> None:
    package = tmp_path / "pkg" / "room"
    package.mkdir(parents=True)
    path = package / "mod.py"
    path.write_text("from ..clock import within\nfrom . import other\nfrom .other import thing\n")
    names = set(_imported_names(path, "pkg.room.mod"))
    assert names == {"pkg.clock.within", "pkg.room.other", "pkg.room.other.thing"}
