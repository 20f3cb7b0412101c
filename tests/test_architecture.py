"""The house rules of ARCHITECTURE.md, checked on the source itself (read as syntax trees, never run).

- Nothing in bot/ imports sandbox/, not even lazily inside a function; nothing in bench/ imports tests/.
- The channel edges (bot/handlers/, bot/api/) import neither sqlalchemy nor storage/: they read
  through the workflow's query functions.
- The senders (bot/adapters/) import neither sqlalchemy nor storage/ nor bot.handover: they
  translate what the drainer hands them (bot/handed.py) and read nothing themselves.
- No import circle among the modules of bot/, storage/, scheduler/ and sandbox/ (the imports
  made when a module loads; those under `if TYPE_CHECKING:` and inside functions are not).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import load_sandbox
from bot.config import ConfigError, Settings
from bot.service import SANDBOX_GROUP

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "storage", "scheduler", "sandbox")


def module_name(path: Path) -> str:
    """`bot/handlers/telegram/common.py` → `bot.handlers.telegram.common`; a package is its folder."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(*packages: str) -> dict[str, Path]:
    """Every module under the given top-level folders, by dotted name."""
    return {
        module_name(path): path
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
        if ".venv" not in path.parts
    }


MODULES = sources(*PACKAGES)


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an import-from names, with relative imports resolved against `module`."""
    if node.level == 0:
        return node.module or ""
    is_package = MODULES.get(module, Path()).name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules an import statement loads: `from a import b` is `a.b` when b is a module of ours."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    source = _absolute(module, node)
    for alias in node.names:
        candidate = f"{source}.{alias.name}"
        yield candidate if candidate in MODULES else source


def _dynamic_imports(tree: ast.AST) -> Iterator[str]:
    """Modules named in `importlib.import_module("...")` or `__import__("...")` calls."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        first = node.args[0]
        if name in {"import_module", "__import__"} and isinstance(first, ast.Constant):
            yield str(first.value)


def every_import(module: str, path: Path | None = None) -> set[str]:
    """Every module this one (at `path`, if not one of PACKAGES) may import, wherever the statement is
    (functions and TYPE_CHECKING too)."""
    tree = ast.parse((path or MODULES[module]).read_text(encoding="utf-8"))
    found = {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in imported(module, node)
    }
    return found | set(_dynamic_imports(tree))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _load_time(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module loads (not in functions, not for type checking)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _load_time(node.body)
            yield from _load_time(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _load_time(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _load_time(node.body)


def load_time_imports(module: str) -> set[str]:
    """The modules of ours this one imports when it loads."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    return {name for node in _load_time(tree.body) for name in imported(module, node) if name in MODULES}


def _is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def find_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module, or of one that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


# ---------------------------------------------------------------- the rules


def test_nothing_in_bot_imports_the_sandbox() -> None:
    offenders = {
        module: sorted(name for name in every_import(module) if _is_under(name, "sandbox"))
        for module in MODULES
        if _is_under(module, "bot")
    }

    assert {module: names for module, names in offenders.items() if names} == {}


def test_the_benchmarks_never_import_the_tests() -> None:
    offenders = {
        module: sorted(name for name in every_import(module, path) if _is_under(name, "tests"))
        for module, path in sources("bench").items()
    }

    assert {module: names for module, names in offenders.items() if names} == {}


@pytest.mark.parametrize("edge", ["bot.handlers", "bot.api"])
def test_the_channel_edges_import_neither_sqlalchemy_nor_storage(edge: str) -> None:
    offenders = {
        module: sorted(
            name
            for name in every_import(module)
            if _is_under(name, "sqlalchemy") or _is_under(name, "storage")
        )
        for module in MODULES
        if _is_under(module, edge)
    }

    assert {module: names for module, names in offenders.items() if names} == {}


def test_the_senders_read_nothing_and_import_no_handover() -> None:
    readers = ("sqlalchemy", "storage", "bot.handover")
    offenders = {
        module: sorted(name for name in every_import(module) if any(_is_under(name, r) for r in readers))
        for module in MODULES
        if _is_under(module, "bot.adapters")
    }

    assert {module: names for module, names in offenders.items() if names} == {}


# No circle is known: a new one fails here.
KNOWN_CIRCLES: list[list[str]] = []


def test_no_import_circle_among_our_modules() -> None:
    graph = {module: load_time_imports(module) for module in MODULES}

    assert [circle for circle in find_circles(graph) if circle not in KNOWN_CIRCLES] == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}

    assert find_circles(graph) == [["a", "b", "c"], ["e"]]


def test_the_scan_sees_lazy_and_dynamic_imports_inside_functions() -> None:
    tree = ast.parse(
        "def f():\n    from sandbox.wiring import x\n    importlib.import_module('sandbox.guard')\n"
    )
    names = {
        n for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for n in imported("bot.x", node)
    }

    assert names == {"sandbox.wiring"}
    assert set(_dynamic_imports(tree)) == {"sandbox.guard"}


# ---------------------------------------------------------------- the sandbox as an extension


def test_the_production_root_finds_the_sandbox_through_its_entry_point(tmp_path: Path) -> None:
    from sandbox.wiring import Sandbox

    sandbox = load_sandbox(Settings(data_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]

    assert isinstance(sandbox, Sandbox)
    assert SANDBOX_GROUP == "likeness.sandbox"


def test_without_an_installed_sandbox_the_service_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no sandbox is installed"):
        load_sandbox(Settings(data_dir=tmp_path, _env_file=None), group="likeness.none")  # type: ignore[call-arg]


# ---------------------------------------------------------------- module sizes
# (the 500-line rule for bot/, storage/ and scheduler/ goes here)
