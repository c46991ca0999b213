"""The suite collects as one: pytest's default import mode keys a test module by its file name, so
two test files with one name in different folders stop the whole run at collection (CI, stop 32).
And its ``integration`` marker splits it: ``pytest -m "not integration"`` runs the unit tests only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def test_test_file_names_are_unique_across_folders():
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []


def _collected(marker_expression: str) -> subprocess.Popen:
    """``pytest --collect-only -m <expression>`` from the repository root, as a user runs it (the
    repository's pytest config puts platform/ and tests/ on the path). Collection only: no test runs,
    no Ray starts."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", marker_expression, "-p", "no:cacheprovider"],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_the_integration_marker_selects_exactly_the_integration_folder():
    """``pytest -m "not integration"`` is the fast loop: it must leave out every test that starts
    Ray or MLflow (a ``pytestmark`` in tests/integration/conftest.py marked none of them)."""
    runs = {expression: _collected(expression) for expression in ("not integration", "integration")}  # both at once
    ids = {}
    for expression, process in runs.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"pytest --collect-only -m '{expression}' exited {process.returncode}:\n{output[-3000:]}"
        ids[expression] = [line for line in output.splitlines() if "::" in line]
    fast, integration = ids["not integration"], ids["integration"]
    assert [i for i in fast if i.startswith("tests/integration/")] == []
    assert any(i.startswith("tests/unit/") for i in fast)
    assert [i for i in integration if not i.startswith("tests/integration/")] == []
    assert any(i.startswith("tests/integration/") for i in integration)


def test_ci_runs_the_readmes_test_command():
    """.ci/run's command is the README's second command, character for character: what CI runs is
    what a user is told to run (ruff's lint included)."""
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    command = ci[ci.index("# README, command 2:") + 1]
    assert command in (REPO / "README.md").read_text().splitlines()
    assert "ruff check ." in command and command.endswith("python -m pytest")
