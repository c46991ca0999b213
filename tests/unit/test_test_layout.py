"""The suite collects as one: pytest's default import mode keys a test module by its file name, so
two test files with one name in different folders stop the whole run at collection (CI, stop 32)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_file_names_are_unique_across_folders():
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
