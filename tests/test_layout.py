"""The package's layout holds: imports point one way, modules and classes stay small, and every
module says in its first line what it is for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cms"

# layer -> modules (prefixes) in it
LAYERS = {
    "api": ("cms.api", "cms.frontend", "cms.middleware", "cms.delivery"),
    "service": ("cms.service",),
    "store": ("cms.store",),
    "index": ("cms.index", "cms.paging"),
    "base": (
        "cms.types",
        "cms.schemas",
        "cms.programme",
        "cms.media",
        "cms.openreview",
        "cms.serialize",
        "cms.patches",
        "cms.errors",
        "cms.config",
        "cms.database",
        "cms.auth",
        "cms.previews",
        "cms.schedules",
        "cms.webhooks",
    ),
    "app": ("cms.app", "cms.cli", "cms.serve", "cms.__main__", "cms"),
}
# what each layer must never import: api -> service -> store | index, and nothing back
FORBIDDEN = {
    "api": ("store", "index", "app"),
    "service": ("api", "app", "flask"),
    "store": ("api", "service", "index", "app", "flask", "sqlalchemy"),
    "index": ("api", "service", "store", "app", "flask"),
    "base": ("api", "service", "store", "index", "app"),
}
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name: str) -> str | None:
    if name.split(".")[0] in ("flask", "sqlalchemy"):
        return name.split(".")[0]
    best = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best[1])
            ):
                best = (layer, prefix)
    return best[0] if best else None


def imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "cms":  # `from cms import index`: the module named
                found.update(f"cms.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_one_way(path: Path) -> None:
    name = module_name(path)
    layer = layer_of(name)
    assert layer is not None, f"{name} belongs to no layer: add it to LAYERS"
    bad = sorted(
        imported
        for imported in imports(ast.parse(path.read_text()))
        if layer_of(imported) in FORBIDDEN.get(layer, ())
    )
    assert not bad, f"{name} ({layer}) must not import {bad}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_modules_are_small_and_say_what_they_are_for(path: Path) -> None:
    text = path.read_text()
    tree = ast.parse(text)
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name} is over {MAX_MODULE_LINES}"
    doc = ast.get_docstring(tree)
    assert doc and text.startswith('"""'), f"{module_name(path)} starts with no docstring"
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"class {node.name} has {length} lines"


def test_the_checker_sees_a_violation() -> None:
    """The rule is not vacuous: a view importing the store would be caught."""
    tree = ast.parse("from cms.store.git import GitStore\nfrom cms import index\n")
    assert {layer_of(n) for n in imports(tree)} == {"store", "index"}
    assert layer_of("cms.api.content") == "api" and layer_of("cms.service.writes") == "service"
