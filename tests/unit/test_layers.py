"""Layers import downward only: every ``fake2real`` import in platform/ (module level or inside a
function) goes to the importer's own layer or a lower one, as docs/design.md §2 lists them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "platform" / "fake2real"


def layers() -> dict[str, int]:
    """Module prefix → layer number, from the ```layers block of docs/design.md."""
    block = re.search(r"```layers\n(.*?)```", (REPO / "docs" / "design.md").read_text(), re.S)
    assert block, "docs/design.md has no ```layers block"
    found = {}
    for line in block.group(1).splitlines():
        number, _name, *modules = line.split()
        for module in modules:
            found[module] = int(number)
    return found


def layer_of(module: str, table: dict[str, int]) -> int:
    """The layer of the longest listed prefix of ``module`` (``train.methods.erm`` → ``train``)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in table:
            return table[prefix]
    raise AssertionError(f"fake2real.{module} is in no layer of docs/design.md §2")


def imports(path: Path) -> set[str]:
    """The fake2real modules ``path`` imports (without the package prefix), for type hints under
    ``if TYPE_CHECKING:`` too: a type-only import upward still ties a lower layer to a higher one."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fake2real"):
            found |= {f"{node.module}.{a.name}" for a in node.names} if node.module == "fake2real" else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fake2real.")}
    return {name.removeprefix("fake2real.") for name in found}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix("__init__").rstrip(".")
        if name:
            found[name] = path
    return found


def test_every_module_has_a_layer():
    table = layers()
    for name in modules():
        layer_of(name, table)


def test_layers_import_downward_only():
    table = layers()
    upward = []
    for name, path in modules().items():
        own = layer_of(name, table)
        for target in sorted(imports(path)):
            if layer_of(target, table) > own:
                upward.append(f"{name} (layer {own}) imports {target} (layer {layer_of(target, table)})")
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The checker itself: an upward import in a file is found (not a test that cannot fail)."""
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fake2real.report import html\n"
                      "def f():\n    from fake2real.run.sweep import run_sweep\n")
    assert imports(source) == {"report", "run.sweep"}
    assert layer_of("run.sweep", layers()) > layer_of("data.table", layers())
