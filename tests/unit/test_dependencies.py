"""Every third-party module the platform imports comes from a distribution pyproject.toml declares,
and constraints.txt pins every declared distribution inside its declared range."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[2]
SOURCES = (REPO / "platform", REPO / "jobs")
FIRST_PARTY = {"fake2real"}
# Needed at run time but never imported by our code.
RUNTIME_ONLY = {
    "accelerate": "diffusers' default low_cpu_mem_usage loading (warns and falls back without it)",
    "transformers": "the Stable Diffusion pipelines' text encoder and tokenizer",
    "optuna": "ray.tune.search.optuna (fake2real/run/search.py)",
}


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _declared() -> set[str]:
    return {canonicalize_name(Requirement(spec).name) for spec in _project()["dependencies"]}


def _imported_modules() -> dict[str, str]:
    """Top-level absolute imports under platform/ and jobs/: module -> first file importing it."""
    modules: dict[str, str] = {}
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    modules.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return modules


def test_imports_are_found():
    modules = _imported_modules()
    # the scan sees both eager and imported-on-use modules
    assert {"fake2real", "torch", "numpy", "sklearn", "scipy", "matplotlib", "diffusers"} <= set(modules)


def test_every_third_party_import_is_declared():
    providers = packages_distributions()
    declared = _declared()
    third_party = {m: f for m, f in _imported_modules().items() if m not in sys.stdlib_module_names and m not in FIRST_PARTY}
    undeclared = {}
    for module, where in sorted(third_party.items()):
        distributions = {canonicalize_name(d) for d in providers.get(module, [])}
        if not distributions & declared:
            undeclared[module] = (where, sorted(distributions) or "not installed")
    assert not undeclared, f"imported but not in [project] dependencies (module: (file, distributions)): {undeclared}"


def test_runtime_only_dependencies_are_declared():
    missing = {name: why for name, why in RUNTIME_ONLY.items() if canonicalize_name(name) not in _declared()}
    assert not missing, f"needed at run time but not declared: {missing}"


def test_constraints_pin_every_declared_distribution_inside_its_range():
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line).groups()
            pins[canonicalize_name(name)] = version
    project = _project()
    specs = list(project["dependencies"]) + [s for extra in project.get("optional-dependencies", {}).values() for s in extra]
    problems = []
    for spec in specs:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name}: not pinned")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement.name}: pin {pins[name]} outside '{requirement.specifier}'")
    assert not problems, problems


def test_requires_python_is_what_the_pinned_set_supports():
    """Every pinned distribution installed here accepts the oldest Python the project claims."""
    from importlib.metadata import PackageNotFoundError, metadata

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    ours = SpecifierSet(_project()["requires-python"])
    oldest = min(Version(f"3.{minor}") for minor in range(8, 20) if Version(f"3.{minor}") in ours)
    refusing = []
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name = line.split("==")[0].strip()
        if not name or name.startswith("#") or "==" not in line:
            continue
        try:
            needs = metadata(name).get("Requires-Python")
        except PackageNotFoundError:
            continue
        if needs and oldest not in SpecifierSet(needs):
            refusing.append(f"{name} needs Python {needs}")
    assert not refusing, f"requires-python allows {oldest}, but " + "; ".join(refusing)
    assert Version(f"{sys.version_info.major}.{sys.version_info.minor}") in ours
