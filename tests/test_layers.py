"""The layers of docs/architecture.md, kept true by reading every import under src/presplit.

The table "Layers (bottom to top)" in docs/architecture.md gives each package
a layer number; a module may import only from packages of a lower layer (or
its own package). Imports inside functions count too -- a lazy import is
still a dependency -- except those under ``if TYPE_CHECKING:``, which never
run. A new package must be given a row before it can be imported from.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "presplit"
DOC = ROOT / "docs" / "architecture.md"


def _layers() -> dict[str, int]:
    """package -> layer, from the table's rows ``| 3 | `presplit.forecast` | ... |``."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Layers (bottom to top)", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|", section, flags=re.M)
    layers: dict[str, int] = {}
    for layer, names in rows:
        for name in re.findall(r"`presplit\.(\w+)`", names):
            layers[name] = int(layer)
    assert layers, f"no layer table found in {DOC}"
    return layers


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py") if len(rel) == 1 else rel[0]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported presplit package) for every import in the file that is not type-checking only."""
    return _imports_in(path.read_text(encoding="utf-8"), path.relative_to(SRC).parts)


def _imports_in(text: str, here: tuple[str, ...]) -> list[tuple[int, str]]:
    tree = ast.parse(text)
    skip = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package path
                base = list(here[:-node.level]) if len(here) >= node.level else []
                module = ".".join(["presplit", *base, *([node.module] if node.module else [])])
                names = [module] if base or node.module else [f"presplit.{a.name}" for a in node.names]
            elif node.module == "presplit":
                names = [f"presplit.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "presplit" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_layer():
    layers = _layers()
    packages = {_package_of(p) for p in _modules()} - {"__init__", "__main__"}
    missing = sorted(packages - set(layers))
    assert not missing, f"give these a row in the layer table of {DOC.name}: {missing}"
    stale = sorted(set(layers) - packages)
    assert not stale, f"the layer table of {DOC.name} names packages that do not exist: {stale}"


def test_imports_point_down():
    layers = _layers()
    upward = []
    for path in _modules():
        src = _package_of(path)
        if src in ("__init__", "__main__"):
            continue
        for line, dst in _imports(path):
            if dst == src or dst not in layers:  # a non-package name (presplit.__version__) is no layer
                continue
            if layers[dst] >= layers[src]:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {src} (layer {layers[src]}) imports "
                              f"{dst} (layer {layers[dst]})")
    assert not upward, "imports against the layers (docs/architecture.md):\n" + "\n".join(upward)


@pytest.mark.parametrize("lower", ["backends", "policies", "plan", "model", "forecast"])
def test_the_issue_s_rule_holds_by_the_table(lower):
    """The redesign's own rule, independent of how the table is drawn: these never reach up."""
    forbidden = {"control", "apply", "service", "cli"}
    for path in (SRC / lower).rglob("*.py"):
        bad = [(line, dst) for line, dst in _imports(path) if dst in forbidden]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_service_imports_nothing_from_cli():
    for path in (SRC / "service").rglob("*.py"):
        bad = [(line, dst) for line, dst in _imports(path) if dst == "cli"]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_control_loop_is_assembled_in_one_module():
    """``ControlLoop(`` -- or a subclass of it -- is constructed in exactly one module outside tests."""
    loop_classes = {"ControlLoop"}
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in _modules()}
    for tree in trees.values():  # subclasses, wherever they are declared
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b).split(".")[-1] == "ControlLoop"
                                                      for b in node.bases):
                loop_classes.add(node.name)
    builders = set()
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in loop_classes:
                builders.add(str(path.relative_to(ROOT)))
    assert len(builders) == 1, f"control loops are constructed in {sorted(builders)}"


def test_the_checker_sees_lazy_and_relative_imports():
    """The tests above can fail: imports inside functions and relative ones are found; type-only ones are not."""
    text = ("from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from presplit.service.app import App\n"
            "def f():\n    from presplit.control.loop import ControlLoop\n    return ControlLoop\n"
            "from ..apply import journal\n"
            "from . import transition\n")
    found = _imports_in(text, ("plan", "probe.py"))
    assert (5, "control") in found and (7, "apply") in found and (8, "plan") in found
    assert not any(dst == "service" for _, dst in found)
